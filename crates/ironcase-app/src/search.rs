//! Search across incidents, comments and indicators, inside the caller's
//! organisation, with the query language of `ironcase_domain::query`.

use ironcase_domain::ioc::{self as rules, IocType};
use ironcase_domain::query::{self, Clause, Cmp, Filter, Term};
use ironcase_domain::Permission;
use ironcase_store::search::{self as store, Results, Spec};

use crate::page::PageSize;
use crate::{App, AppError, Principal, RequestMeta, Result};

/// The largest page of search results and similar incidents.
pub const MAX_PAGE: u32 = 100;

/// A term's text: each is matched as a phrase of its tokens.
fn text(t: &Term) -> String {
    let (Term::Word(w) | Term::Phrase(w)) = t;
    w.clone()
}

/// Turns a parsed query into what the store runs. `me` is the caller's user.
pub fn compile(q: &query::Query, me: ironcase_domain::UserId) -> Spec {
    let mut s = Spec::default();
    let mut negative: Vec<String> = Vec::new();
    for c in &q.clauses {
        match c {
            Clause::Any(terms) => {
                for t in terms {
                    let (Term::Word(w) | Term::Phrase(w)) = t;
                    s.highlight.push(w.to_lowercase());
                }
                s.required.push(terms.iter().map(text).collect());
            }
            Clause::Not(t) => negative.push(text(t)),
            Clause::Filter(f) => match f {
                Filter::Severity(v) => s.severity.push(*v),
                Filter::Status(v) => s.status.push(*v),
                Filter::Category(v) => s.category.push(*v),
                Filter::Tag(v) => s.tags.push(v.clone()),
                Filter::Tlp(v) => s.tlp.push(*v),
                Filter::AssigneeMe => s.assignee = Some(me),
                Filter::Created(Cmp::After, t) => s.created_after = Some(s.created_after.map_or(*t, |a| a.max(*t))),
                Filter::Created(Cmp::Before, t) => s.created_before = Some(s.created_before.map_or(*t, |b| b.min(*t))),
                Filter::Ioc(raw) => {
                    let forms =
                        IocType::ALL.iter().filter_map(|k| rules::normalize(*k, raw).ok().map(|v| (k.as_str().to_owned(), v))).collect();
                    s.iocs.push(forms);
                }
            },
        }
    }
    // A filter on one column given twice means either value (severity:high severity:critical).
    s.excluded = negative;
    s
}

impl App {
    /// `GET /search`. `offset` is the cursor.
    pub async fn search(&self, p: &Principal, meta: &RequestMeta, q: &str, offset: i64, size: PageSize) -> Result<Results> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let parsed = query::parse(q).map_err(|e| AppError::InvalidQuery { position: e.position, message: e.message })?;
        let mut spec = compile(&parsed, p.user_id());
        spec.sight = p.sight;
        let org = p.org;
        // The total is counted, so the page needs no extra row to know whether another follows.
        let limit = size.fetch() - 1;
        let found: Results = self.store().read(move |c| Ok::<_, AppError>(store::run(c, org, &spec, offset.max(0), limit)?)).await?;
        let details = serde_json::json!({ "query_length": q.chars().count(), "total": found.total });
        self.audit_read(p, meta, "incident.search", ("organization", &org.to_string()), details).await?;
        Ok(found)
    }
}

impl App {
    /// `GET /incidents/{id}/similar`: shared indicators first, then text.
    pub async fn similar(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        r: ironcase_store::incident::IncidentRef,
        size: PageSize,
    ) -> Result<Vec<store::Similar>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        let this = self.store().read_now(move |c| ironcase_store::incident::get(c, org, r)).await?;
        let this = crate::incidents::visible(p, this)?;
        let sight = p.sight;
        // The distinct words of the title and the start of the description;
        // the store keeps those that tell this incident apart.
        let mut words: Vec<String> = Vec::new();
        for w in format!("{} {}", this.title, this.description.chars().take(2000).collect::<String>())
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
        {
            let w = w.to_lowercase();
            if !words.contains(&w) && words.len() < 64 {
                words.push(w);
            }
        }
        let limit = size.get() as i64;
        Ok(self.store().read(move |c| store::similar(c, org, this.id, &words, sight, limit)).await?)
    }
}
