//! The audit log: append (hash-chained, in the caller's transaction), query, verify.

use crate::db::Appendable;
use crate::Value;
use crate::{params, Row};
use ironcase_domain::audit::{
    chain_hash, is_personal_field, AuditCategory, AuditSeverity, Canonical, CanonicalV2, Pattern, PersonalPart, CATEGORIES, CRITICAL,
    GENESIS, WARNING,
};
use ironcase_domain::Timestamp;

use crate::{query_map, query_opt, Conn, MemoKey, Result, Tx};

/// The chain of operator actions that belong to no organisation.
pub const PLATFORM: &str = "platform";

#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub tenant: String,
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub tenant: String,
    pub seq: i64,
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// 1: personal data in the hashed bytes (entries written before
    /// sealing); 2: sealed in `personal`.
    pub v: i64,
    pub personal: Vec<SealedPart>,
    /// Set when the entry is read for display ([`EntryRow::bytes`] no longer
    /// holds then): some of its personal data was erased.
    pub erased: bool,
}

/// A data subject's personal data in an entry: the part the chain hashes,
/// and the data sealed under the subject's key (opaque text).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedPart {
    #[serde(flatten)]
    pub part: PersonalPart,
    pub x: String,
}

/// Seals the personal data of audit entries with the application's keys:
/// the store only keeps what it is given.
pub trait Personal: Send + Sync {
    /// A fresh key for `subject`, sealed for storage (as text).
    fn new_key(&self, tenant: &str, subject: &str) -> std::result::Result<String, String>;
    /// Seals `fields` (compact JSON) under the subject's stored key: the
    /// commitment the chain hashes (hex) and the sealed text.
    fn seal(&self, tenant: &str, subject: &str, key: &str, fields: &str) -> std::result::Result<(String, String), String>;
    /// A keyed hash of `value` (`ip:` or `email:` and an address), hex.
    fn tag(&self, tenant: &str, value: &str) -> String;
}

impl EntryRow {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            tenant: &self.tenant,
            seq: self.seq,
            at: self.at.0,
            actor_id: self.actor_id.as_deref(),
            actor_kind: &self.actor_kind,
            action: &self.action,
            resource_type: self.resource_type.as_deref(),
            resource_id: self.resource_id.as_deref(),
            outcome: &self.outcome,
            request_id: self.request_id.as_deref(),
            source_ip: self.source_ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            details: &self.details,
        }
    }
}

const COLS: &str = "organization_id, seq, at, actor_id, actor_kind, action, resource_type, resource_id, outcome, request_id, \
    source_ip, user_agent, details, prev_hash, hash, v, personal";

fn entry(r: &Row<'_, '_>) -> Result<EntryRow> {
    Ok(EntryRow {
        tenant: r.get("organization_id")?,
        seq: r.get("seq")?,
        at: Timestamp(r.get("at")?),
        actor_id: r.get("actor_id")?,
        actor_kind: r.get("actor_kind")?,
        action: r.get("action")?,
        resource_type: r.get("resource_type")?,
        resource_id: r.get("resource_id")?,
        outcome: r.get("outcome")?,
        request_id: r.get("request_id")?,
        source_ip: r.get("source_ip")?,
        user_agent: r.get("user_agent")?,
        details: r.get("details")?,
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
        v: r.get("v")?,
        personal: match r.get::<_, Option<String>>("personal")? {
            Some(t) => serde_json::from_str(&t).map_err(|_| crate::StoreError::Corrupt("audit entry's personal data".into()))?,
            None => Vec::new(),
        },
        erased: false,
    })
}

/// The log is only appended to; what reads it declares it ([`Conn::sees`];
/// a write finds the chain's head in `audit_head`).
pub(crate) static ENTRIES: Appendable = Appendable {
    table: "audit_log",
    one: "insert into audit_log (organization_id, seq, at, actor_id, actor_kind, action, resource_type, resource_id, outcome, \
          request_id, source_ip, user_agent, details, prev_hash, hash, v, personal, ip_tag) \
          values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    many: "insert into audit_log (organization_id, seq, at, actor_id, actor_kind, action, resource_type, resource_id, outcome, \
           request_id, source_ip, user_agent, details, prev_hash, hash, v, personal, ip_tag) \
           select * from unnest(?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], \
           ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[])",
};

/// Appends one entry to its tenant's chain. Must run inside the transaction
/// of the change it records.
pub fn append(c: &Tx, e: NewEntry) -> Result<i64> {
    c.scope(&e.tenant)?;
    // One chain per tenant: two nodes appending at once would fork it. They
    // cannot: write transactions take turns across nodes (see `writer.rs`).
    let memo = MemoKey::AuditHead(e.tenant.clone());
    let head = match c.memo(&memo) {
        Some(h) => Some(h),
        None => query_opt(c, "select seq, hash from audit_head where organization_id = ?", [&e.tenant], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?,
    };
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS.to_owned()));
    let mut e = e;
    // With the application's keys, the personal data leaves the hashed
    // bytes: sealed per subject, with a keyed hash of the address to filter
    // by (version 2).
    let (v, personal, ip_tag) = match c.1 {
        Some(keys) => {
            let (parts, tag) = seal_personal(c, keys, &mut e)?;
            (2, parts, tag)
        }
        None => (1, Vec::new(), None),
    };
    let mut row = EntryRow {
        tenant: e.tenant,
        seq: prev_seq + 1,
        at: e.at,
        actor_id: e.actor_id,
        actor_kind: e.actor_kind,
        action: e.action,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        outcome: e.outcome,
        request_id: e.request_id,
        source_ip: e.source_ip,
        user_agent: e.user_agent,
        details: e.details.to_string(),
        prev_hash,
        hash: String::new(),
        v,
        personal,
        erased: false,
    };
    row.hash = chain_hash(&row.bytes(), &row.prev_hash);
    let personal = if row.personal.is_empty() { None } else { serde_json::to_string(&row.personal).ok() };
    // The chain's next link, under the batch's lock: nothing can take it.
    c.append(
        &ENTRIES,
        vec![
            row.tenant.as_str().into(),
            row.seq.into(),
            row.at.0.into(),
            row.actor_id.clone().into(),
            row.actor_kind.as_str().into(),
            row.action.as_str().into(),
            row.resource_type.clone().into(),
            row.resource_id.clone().into(),
            row.outcome.as_str().into(),
            row.request_id.clone().into(),
            row.source_ip.clone().into(),
            row.user_agent.clone().into(),
            row.details.as_str().into(),
            row.prev_hash.as_str().into(),
            row.hash.as_str().into(),
            row.v.into(),
            personal.into(),
            ip_tag.into(),
        ],
    )?;
    c.write_behind(
        memo,
        (row.seq, row.hash.clone()),
        "insert into audit_head (organization_id, seq, hash) values (?, ?, ?) \
         on conflict (organization_id) do update set seq = excluded.seq, hash = excluded.hash",
        vec![Value::Text(row.tenant), Value::Integer(row.seq), Value::Text(row.hash)],
    )?;
    Ok(row.seq)
}

/// Takes the personal data out of `e` (its source address and user agent,
/// the e-mail addresses in its details) and seals it, one part per data
/// subject: the actor's address and agent are theirs (an anonymous
/// caller's belong to the address they gave, if any); each e-mail address
/// is its own subject's. Returns the parts and the address's keyed hash.
fn seal_personal(c: &Tx, keys: &dyn Personal, e: &mut NewEntry) -> Result<(Vec<SealedPart>, Option<String>)> {
    let mut parts: Vec<(String, serde_json::Map<String, serde_json::Value>)> = Vec::new();
    let mut put = |subject: String, field: &str, value: serde_json::Value| match parts.iter_mut().find(|p| p.0 == subject) {
        Some(p) => {
            p.1.insert(field.to_owned(), value);
        }
        None => parts.push((subject, serde_json::Map::from_iter([(field.to_owned(), value)]))),
    };
    let mut first_email = None;
    if let serde_json::Value::Object(m) = &mut e.details {
        let names: Vec<String> = m.iter().filter(|(k, v)| is_personal_field(k) && v.is_string()).map(|(k, _)| k.clone()).collect();
        for name in names {
            if let Some(v) = m.remove(&name) {
                let address = v.as_str().unwrap_or_default().to_lowercase();
                let subject = format!("email:{}", keys.tag(&e.tenant, &format!("email:{address}")));
                first_email.get_or_insert_with(|| subject.clone());
                put(subject, &name, v);
            }
        }
    }
    let ip_tag = e.source_ip.as_deref().map(|ip| keys.tag(&e.tenant, &format!("ip:{ip}")));
    if e.source_ip.is_some() || e.user_agent.is_some() {
        let subject = match (e.actor_kind.as_str(), &e.actor_id) {
            ("user" | "api_key", Some(id)) => id.clone(),
            _ => first_email.unwrap_or_else(|| "anonymous".to_owned()),
        };
        if let Some(ip) = e.source_ip.take() {
            put(subject.clone(), "source_ip", ip.into());
        }
        if let Some(ua) = e.user_agent.take() {
            put(subject, "user_agent", ua.into());
        }
    }
    let mut out = Vec::with_capacity(parts.len());
    for (subject, fields) in parts {
        let key = subject_key(c, keys, &e.tenant, &subject, e.at)?;
        let fields = serde_json::Value::Object(fields).to_string();
        let (commit, x) = keys.seal(&e.tenant, &subject, &key, &fields).map_err(crate::StoreError::Database)?;
        out.push(SealedPart { part: PersonalPart { s: subject, c: commit }, x });
    }
    Ok((out, ip_tag))
}

/// The subject's stored key, made when it has none.
fn subject_key(c: &Tx, keys: &dyn Personal, tenant: &str, subject: &str, at: Timestamp) -> Result<String> {
    let memo = MemoKey::SubjectKey(tenant.to_owned(), subject.to_owned());
    if let Some((_, k)) = c.memo(&memo) {
        return Ok(k);
    }
    let found = query_opt(c, "select sealed from subject_key where organization_id = ? and subject = ?", [tenant, subject], |r| {
        r.get::<_, String>(0)
    })?;
    let key = match found {
        Some(k) => k,
        None => {
            let k = keys.new_key(tenant, subject).map_err(crate::StoreError::Database)?;
            crate::exec(
                c,
                "insert into subject_key (organization_id, subject, sealed, created_at) values (?, ?, ?, ?)",
                params![tenant, subject, k.as_str(), at.0],
            )?;
            k
        }
    };
    c.remember(memo, (0, key.clone()));
    Ok(key)
}

/// The stored keys of these subjects (those not erased).
pub fn subject_keys(c: &Conn, tenant: &str, subjects: &[&str]) -> Result<std::collections::HashMap<String, String>> {
    c.scope(tenant)?;
    let mut out = std::collections::HashMap::new();
    for chunk in subjects.chunks(300) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut p: Vec<Value> = vec![Value::Text(tenant.to_owned())];
        p.extend(chunk.iter().map(|s| Value::Text((*s).to_owned())));
        for (s, k) in
            query_map(c, &format!("select subject, sealed from subject_key where organization_id = ? and subject in ({marks})"), p, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
        {
            out.insert(s, k);
        }
    }
    Ok(out)
}

/// Erases these subjects' personal data from the tenant's audit log: their
/// keys go (what was sealed under them can no longer be read) and so do the
/// keyed hashes of their source addresses. Nothing the chain hashes
/// changes. How many keys went.
pub fn shred(c: &Tx, tenant: &str, subjects: &[String]) -> Result<i64> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    let mut n = 0;
    for s in subjects {
        c.forget(&MemoKey::SubjectKey(tenant.to_owned(), s.clone()));
        n += crate::exec(c, "delete from subject_key where organization_id = ? and subject = ?", params![tenant, s.as_str()])? as i64;
        crate::exec(
            c,
            "update audit_log set ip_tag = null where organization_id = ? and ip_tag is not null and personal like ? escape '\\'",
            params![tenant, part_of(s)],
        )?;
    }
    Ok(n)
}

/// The entries about a data subject, newest first, at most `limit`: those
/// where `actor` acted, and those with a part of one of `subjects`.
pub fn about(c: &Conn, tenant: &str, actor: Option<&str>, subjects: &[String], limit: i64) -> Result<Vec<EntryRow>> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    let mut sql = format!("select {COLS} from audit_log where organization_id = ? and (actor_id = ?");
    let mut p: Vec<Value> = vec![Value::Text(tenant.to_owned()), actor.map(str::to_owned).into()];
    for s in subjects {
        sql.push_str(" or personal like ? escape '\\'");
        p.push(Value::Text(part_of(s)));
    }
    sql.push_str(") order by seq desc limit ?");
    p.push(Value::Integer(limit));
    query_map(c, &sql, p, entry)
}

/// A LIKE pattern for the `personal` text of an entry with a part of `subject`.
fn part_of(subject: &str) -> String {
    format!("%\"s\":\"{}\"%", subject.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<String>,
    pub source_ip: Option<String>,
    /// The address's keyed hash, which sealed entries are found by (the
    /// application computes it).
    pub source_ip_tag: Option<String>,
    pub request_id: Option<String>,
    pub category: Option<ironcase_domain::audit::AuditCategory>,
    pub severity: Option<ironcase_domain::audit::AuditSeverity>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Newest first, entries with `seq < before`.
pub fn list(c: &Conn, tenant: &str, f: &Filter, before: Option<i64>, limit: i64) -> Result<Vec<EntryRow>> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    crate::list_in_order(c, list_query(tenant, f, before, limit), entry)
}

/// The list's statement: the tenant's entries, unfiltered, are read down
/// their index whatever the statistics; filters (each with an index that
/// leads with the tenant and the filtered column) are left to the planner.
pub(crate) fn list_query(tenant: &str, f: &Filter, before: Option<i64>, limit: i64) -> crate::db::ListQuery {
    let mut sql = format!("select {COLS} from audit_log where organization_id = ?");
    let mut p: Vec<Value> = vec![Value::Text(tenant.to_owned())];
    for (col, v) in [
        ("action", &f.action),
        ("actor_id", &f.actor_id),
        ("resource_type", &f.resource_type),
        ("resource_id", &f.resource_id),
        ("outcome", &f.outcome),
        ("request_id", &f.request_id),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" and {col} = ?"));
            p.push(Value::Text(v.clone()));
        }
    }
    // Sealed entries by the address's keyed hash, older ones by the address.
    if let Some(ip) = &f.source_ip {
        sql.push_str(" and (source_ip = ? or ip_tag = ?)");
        p.push(Value::Text(ip.clone()));
        p.push(Value::Text(f.source_ip_tag.clone().unwrap_or_default()));
    }
    // Derived from the action (and outcome) by the domain's rules, as SQL
    // made of its constants.
    if let Some(c) = f.category {
        sql.push_str(&format!(" and {}", category_sql(c)));
    }
    if let Some(s) = f.severity {
        sql.push_str(&format!(" and {}", severity_sql(s)));
    }
    for (clause, v) in [(" and at >= ?", f.from.map(|t| t.0)), (" and at < ?", f.to.map(|t| t.0)), (" and seq < ?", before)] {
        if let Some(v) = v {
            sql.push_str(clause);
            p.push(Value::Integer(v));
        }
    }
    sql.push_str(" order by seq desc limit ?");
    p.push(Value::Integer(limit));
    let in_index_order = f.action.is_none()
        && f.actor_id.is_none()
        && f.resource_type.is_none()
        && f.resource_id.is_none()
        && f.outcome.is_none()
        && f.source_ip.is_none()
        && f.request_id.is_none()
        && f.category.is_none()
        && f.severity.is_none()
        && f.from.is_none()
        && f.to.is_none();
    crate::db::ListQuery { sql, params: p, in_index_order }
}

/// A condition (over `action` and `outcome`) true exactly for the entries
/// `domain::audit::category` puts in `c`: the domain's pattern tables as SQL
/// (constants: the text holds no input).
fn category_sql(c: AuditCategory) -> String {
    let mut before = Vec::new();
    for (cat, ps) in CATEGORIES {
        if *cat == c {
            let earlier = if before.is_empty() { String::new() } else { format!(" and not ({})", before.join(" or ")) };
            return format!("(({}){earlier})", any_sql(ps));
        }
        before.push(any_sql(ps));
    }
    format!("(not ({}))", before.join(" or "))
}

/// A condition true exactly for the entries `domain::audit::severity` gives `s`.
fn severity_sql(s: AuditSeverity) -> String {
    let (critical, warning) = (any_sql(CRITICAL), format!("(outcome <> 'success' or {})", any_sql(WARNING)));
    match s {
        AuditSeverity::Critical => format!("({critical})"),
        AuditSeverity::Warning => format!("(not ({critical}) and {warning})"),
        AuditSeverity::Info => format!("(not ({critical}) and not {warning})"),
    }
}

/// Any of the patterns: a prefix (ending in `.`) or the whole action.
/// Patterns are lowercase words, `_` and dots; `substr` sidesteps LIKE's `_`.
fn any_sql(ps: &[Pattern]) -> String {
    ps.iter()
        .map(|p| if p.ends_with('.') { format!("substr(action, 1, {}) = '{p}'", p.len()) } else { format!("action = '{p}'") })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The outcome of re-computing a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub tenant: String,
    pub ok: bool,
    pub entries: i64,
    pub head: Option<String>,
    /// The first sequence number that does not check out.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Recomputes one tenant's chain from the first entry.
pub fn verify(c: &Conn, tenant: &str) -> Result<Verification> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    let mut v = Verification { tenant: tenant.to_owned(), ok: true, entries: 0, head: None, first_bad_seq: None, reason: None };
    // A pruned chain starts after its pruned prefix, from the hash recorded
    // for it.
    let (mut expected_seq, mut prev) = pruned(c, tenant)?.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h));
    {
        let mut stop = None;
        c.each_row(&format!("select {COLS} from audit_log where organization_id = ? order by seq"), [tenant], |r| {
            let e = entry(r)?;
            v.entries += 1;
            let bad = if e.seq != expected_seq {
                Some("sequence gap")
            } else if e.prev_hash != prev {
                Some("previous hash does not match")
            } else if !e.hashes_right_after(&prev) {
                Some("entry does not match its hash")
            } else {
                None
            };
            if let Some(why) = bad {
                stop = Some((expected_seq.min(e.seq), why));
                return Ok(false);
            }
            prev = e.hash.clone();
            expected_seq += 1;
            Ok(true)
        })?;
        if let Some((seq, why)) = stop {
            v.ok = false;
            v.first_bad_seq = Some(seq);
            v.reason = Some(why.to_owned());
            return Ok(v);
        }
    }
    let head = query_opt(c, "select seq, hash from audit_head where organization_id = ?", [tenant], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let last = expected_seq - 1;
    match head {
        Some((hs, hh)) if hs != last || hh != prev => {
            v.ok = false;
            v.first_bad_seq = Some((last + 1).min(hs));
            v.reason = Some("chain ends before its recorded head".to_owned());
            return Ok(v);
        }
        Some(_) => {}
        None if last > 0 => {
            v.ok = false;
            v.first_bad_seq = Some(1);
            v.reason = Some("chain has no recorded head".to_owned());
            return Ok(v);
        }
        None => {}
    }
    if last > 0 {
        v.head = Some(prev);
    }
    Ok(v)
}

/// Every tenant that has a chain.
pub fn tenants(c: &Conn) -> Result<Vec<String>> {
    c.platform()?;
    c.sees(&ENTRIES)?;
    query_map(c, "select organization_id from audit_head union select distinct organization_id from audit_log order by 1", params![], |r| {
        r.get(0)
    })
}

impl EntryRow {
    /// The entry's leaf in its tenant's Merkle tree (before RFC 6962's
    /// `0x00` prefix): the same bytes the chain hashes.
    pub fn leaf(&self) -> Vec<u8> {
        self.bytes()
    }

    /// The bytes the chain hashes: the canonical form of the entry's version.
    pub fn bytes(&self) -> Vec<u8> {
        if self.v >= 2 {
            let parts: Vec<PersonalPart> = self.personal.iter().map(|p| p.part.clone()).collect();
            CanonicalV2 {
                v: 2,
                tenant: &self.tenant,
                seq: self.seq,
                at: self.at.0,
                actor_id: self.actor_id.as_deref(),
                actor_kind: &self.actor_kind,
                action: &self.action,
                resource_type: self.resource_type.as_deref(),
                resource_id: self.resource_id.as_deref(),
                outcome: &self.outcome,
                request_id: self.request_id.as_deref(),
                details: &self.details,
                personal: &parts,
            }
            .bytes()
        } else {
            self.canonical().bytes()
        }
    }

    /// Whether the entry hashes to its `hash` after `prev_hash`.
    pub fn hashes_right(&self) -> bool {
        self.hashes_right_after(&self.prev_hash)
    }

    fn hashes_right_after(&self, prev: &str) -> bool {
        chain_hash(&self.bytes(), prev) == self.hash
    }
}

/// The tenant's entries in order from sequence number `from`, at most `limit`.
pub fn entries_from(c: &Conn, tenant: &str, from: i64, limit: i64) -> Result<Vec<EntryRow>> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    query_map(
        c,
        &format!("select {COLS} from audit_log where organization_id = ? and seq >= ? order by seq limit ?"),
        params![tenant, from, limit],
        entry,
    )
}

/// The chain's head: its last sequence number and hash.
pub fn head(c: &Conn, tenant: &str) -> Result<Option<(i64, String)>> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    query_opt(c, "select seq, hash from audit_head where organization_id = ?", [tenant], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })
}

/// The Merkle tree's stored hashes (hex) at these indexes, in their order;
/// `NotFound` when one is missing.
pub fn tree_hashes(c: &Conn, tenant: &str, idx: &[i64]) -> Result<Vec<String>> {
    c.scope(tenant)?;
    if idx.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; idx.len()].join(", ");
    let mut p: Vec<Value> = vec![Value::Text(tenant.to_owned())];
    p.extend(idx.iter().map(|i| Value::Integer(*i)));
    let found: std::collections::HashMap<i64, String> =
        query_map(c, &format!("select idx, hash from audit_tree where organization_id = ? and idx in ({marks})"), p, |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .into_iter()
        .collect();
    idx.iter().map(|i| found.get(i).cloned().ok_or(crate::StoreError::NotFound)).collect()
}

/// Stores the tree's hashes (hex) at `from`, `from + 1`, ….
pub fn put_tree_hashes(c: &Tx, tenant: &str, from: i64, hashes: &[String]) -> Result<()> {
    c.scope(tenant)?;
    for (n, chunk) in hashes.chunks(300).enumerate() {
        let start = from + (n * 300) as i64;
        let marks = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let mut p: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for (i, h) in chunk.iter().enumerate() {
            p.extend([Value::Text(tenant.to_owned()), Value::Integer(start + i as i64), Value::Text(h.clone())]);
        }
        crate::exec(c, &format!("insert into audit_tree (organization_id, idx, hash) values {marks}"), p)?;
    }
    Ok(())
}

/// A signed checkpoint of a tenant's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub tenant: String,
    pub size: i64,
    /// The root at `size`, hex.
    pub root: String,
    /// The C2SP signed note.
    pub note: String,
    pub key_id: String,
    pub at: Timestamp,
}

const CHECKPOINT_COLS: &str = "organization_id, size, root, note, key_id, at";

fn checkpoint(r: &Row<'_, '_>) -> Result<CheckpointRow> {
    Ok(CheckpointRow { tenant: r.get(0)?, size: r.get(1)?, root: r.get(2)?, note: r.get(3)?, key_id: r.get(4)?, at: Timestamp(r.get(5)?) })
}

pub fn put_checkpoint(c: &Tx, k: &CheckpointRow) -> Result<()> {
    c.scope(&k.tenant)?;
    crate::exec(
        c,
        &format!("insert into audit_checkpoint ({CHECKPOINT_COLS}) values (?, ?, ?, ?, ?, ?)"),
        params![k.tenant, k.size, k.root, k.note, k.key_id, k.at.0],
    )?;
    c.sees(&ENTRIES)?;
    crate::exec(
        c,
        "update audit_head set signed_size = ?, signed_at = ? where organization_id = ? and signed_size < ?",
        params![k.size, k.at.0, k.tenant, k.size],
    )?;
    Ok(())
}

/// The tenant's latest checkpoint (the tree is built up to its size).
pub fn latest_checkpoint(c: &Conn, tenant: &str) -> Result<Option<CheckpointRow>> {
    c.scope(tenant)?;
    query_opt(
        c,
        &format!("select {CHECKPOINT_COLS} from audit_checkpoint where organization_id = ? order by size desc limit 1"),
        [tenant],
        checkpoint,
    )
}

/// The tenant's checkpoints of sizes above `after`, smallest first.
pub fn checkpoints(c: &Conn, tenant: &str, after: i64, limit: i64) -> Result<Vec<CheckpointRow>> {
    c.scope(tenant)?;
    query_map(
        c,
        &format!("select {CHECKPOINT_COLS} from audit_checkpoint where organization_id = ? and size > ? order by size limit ?"),
        params![tenant, after, limit],
        checkpoint,
    )
}

/// A chain's head and its latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub tenant: String,
    pub seq: i64,
    /// The latest checkpoint's size (0: none yet) and time.
    pub signed_size: i64,
    pub signed_at: Option<Timestamp>,
}

/// Every tenant's chain head, with its latest checkpoint (the checkpoint
/// job's: one row per tenant).
pub fn heads(c: &Conn) -> Result<Vec<Head>> {
    c.platform()?;
    c.sees(&ENTRIES)?;
    query_map(c, "select organization_id, seq, signed_size, signed_at from audit_head order by organization_id", params![], |r| {
        Ok(Head { tenant: r.get(0)?, seq: r.get(1)?, signed_size: r.get(2)?, signed_at: r.get::<_, Option<i64>>(3)?.map(Timestamp) })
    })
}

/// How far the tenant's chain was pruned: the last removed entry's sequence
/// number and hash (the next entry's `prev_hash`).
pub fn pruned(c: &Conn, tenant: &str) -> Result<Option<(i64, String)>> {
    c.scope(tenant)?;
    query_opt(c, "select seq, hash from audit_pruned where organization_id = ?", [tenant], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// The largest sequence number, at most `upto`, up to which every entry
/// still held is older than `cutoff` (the pruned point when none is).
pub fn prunable(c: &Conn, tenant: &str, cutoff: Timestamp, upto: i64) -> Result<i64> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    let from = pruned(c, tenant)?.map_or(0, |p| p.0);
    if upto <= from {
        return Ok(from);
    }
    let young: Option<i64> = crate::query_one(
        c,
        "select min(seq) from audit_log where organization_id = ? and seq > ? and seq <= ? and at >= ?",
        params![tenant, from, upto, cutoff.0],
        |r| r.get(0),
    )?;
    Ok(young.map_or(upto, |s| s - 1))
}

/// Removes the tenant's entries up to sequence number `upto` (a prefix of
/// the chain), recording the last one's hash so the rest still links.
/// Their leaves stay in the tree, so checkpoints and proofs still hold.
pub fn prune(c: &Tx, tenant: &str, upto: i64, at: Timestamp) -> Result<i64> {
    c.scope(tenant)?;
    c.sees(&ENTRIES)?;
    let Some(hash) =
        query_opt(c, "select hash from audit_log where organization_id = ? and seq = ?", params![tenant, upto], |r| r.get::<_, String>(0))?
    else {
        return Ok(0);
    };
    let n = crate::exec(c, "delete from audit_log where organization_id = ? and seq <= ?", params![tenant, upto])?;
    crate::exec(
        c,
        "insert into audit_pruned (organization_id, seq, hash, at) values (?, ?, ?, ?) \
         on conflict (organization_id) do update set seq = excluded.seq, hash = excluded.hash, at = excluded.at",
        params![tenant, upto, hash.as_str(), at.0],
    )?;
    Ok(n as i64)
}

/// The largest checkpoint size at most `size` (pruning stops at one).
pub fn checkpoint_at_most(c: &Conn, tenant: &str, size: i64) -> Result<Option<i64>> {
    c.scope(tenant)?;
    crate::query_one(c, "select max(size) from audit_checkpoint where organization_id = ? and size <= ?", params![tenant, size], |r| {
        r.get(0)
    })
}
