//! The OpenAPI 3.1 document, built from the handlers' annotations.

use ironcase_app::ErrorCode;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ironcase API", description = "Multi-tenant incident response. Errors are RFC 9457 problem+json with a stable `code`."),
    components(schemas(crate::error::Problem)),
    tags((name = "auth"), (name = "incidents"), (name = "iocs"), (name = "evidence"), (name = "search"), (name = "events"), (name = "organization"), (name = "api-keys"), (name = "webhooks"), (name = "notifications"), (name = "analyzers"), (name = "alerts"), (name = "audit"), (name = "admin"), (name = "operations"))
)]
pub struct ApiDoc;

/// The document once every route is in it (see `routes::router`): the
/// bearer scheme, and the problems every operation of its kind can answer.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Bearer.modify(&mut doc);
    Problems.modify(&mut doc);
    doc
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every error an operation can answer, as `application/problem+json`: the
/// handlers name the errors particular to them; the ones every route of its
/// kind shares are added here, from what the route takes — a credential (401,
/// 403), a path parameter (404), query parameters or a body (422), any
/// body (400, 413, 415) — and what any API route may answer (429, 500, 503).
struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                add_problems(op);
            }
        }
    }
}

fn add_problems(op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |at: ParameterIn| params.iter().any(|p| p.parameter_in == at);
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut statuses = vec![429, 500, 503];
    if secured {
        statuses.extend([401, 403]);
    }
    if has(ParameterIn::Path) {
        statuses.push(404);
    }
    if has(ParameterIn::Query) || op.request_body.is_some() {
        statuses.push(422);
    }
    if op.request_body.is_some() {
        statuses.extend([400, 413, 415]);
    }
    let responses = &mut op.responses.responses;
    for status in statuses {
        responses.entry(status.to_string()).or_insert_with(|| RefOr::T(Response::new(String::new())));
    }
    for (status, r) in responses.iter_mut() {
        let (RefOr::T(r), Ok(code)) = (r, status.parse::<u16>()) else { continue };
        if code < 400 {
            continue;
        }
        if r.description.is_empty() {
            r.description = codes_of(code);
        }
        r.content.clear();
        r.content.insert("application/problem+json".into(), Content::new(Some(Ref::from_schema_name("Problem"))));
    }
}

/// The codes of a status, for a response's description.
fn codes_of(status: u16) -> String {
    let codes: Vec<String> = ErrorCode::ALL.iter().filter(|c| c.status() == status).map(|c| format!("`{}`", c.as_str())).collect();
    format!("problem+json: {}", codes.join(", "))
}

#[cfg(test)]
mod tests {
    /// Every type the document names is named once: utoipa merges two
    /// schemas that share a name without a word, and the document then
    /// describes one of them wrongly (schemathesis found the compliance
    /// report described as an analyzer's report).
    #[test]
    fn no_two_schemas_share_a_name() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("src"), &mut files);
        walk(&root.join("../ironcase-domain/src"), &mut files);
        let mut names: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let mut derived = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    derived = true;
                    continue;
                }
                if derived && !line.starts_with("#[") && !line.starts_with("///") {
                    let name = ["pub struct ", "pub enum ", "struct ", "enum "]
                        .iter()
                        .find_map(|k| line.strip_prefix(k))
                        .and_then(|rest| rest.split(['<', ' ', '{', '(', ';']).next());
                    if let Some(n) = name {
                        names.entry(n.to_owned()).or_default().push(f.display().to_string());
                    }
                    derived = false;
                }
            }
            // `string_enum!` writes its own schema under the enum's name.
            for part in text.split("string_enum!(").skip(1) {
                let name = part.lines().map(str::trim).find(|l| !l.starts_with("///") && !l.is_empty());
                if let Some(n) = name.and_then(|l| l.split([' ', '{']).next()) {
                    names.entry(n.to_owned()).or_default().push(f.display().to_string());
                }
            }
        }
        let twice: Vec<_> = names.iter().filter(|(_, at)| at.len() > 1).collect();
        assert!(names.len() > 100, "found only {} schema names: has the layout changed?", names.len());
        assert!(twice.is_empty(), "schema names used twice: {twice:?}");
    }
}
