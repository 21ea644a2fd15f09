//! The OpenAPI 3.1 document, built from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ironcase API", description = "Multi-tenant incident response. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        routes::ops::healthz, routes::ops::readyz, routes::ops::metrics,
        routes::auth::login, routes::auth::refresh, routes::auth::logout, routes::auth::me,
        routes::admin::create, routes::admin::list, routes::admin::set_plan, routes::admin::set_status, routes::members::usage,
        routes::hierarchy::children, routes::hierarchy::set_parent_access, routes::hierarchy::child_incidents,
        routes::hierarchy::child_incident, routes::hierarchy::child_evidence, routes::hierarchy::child_audit,
        routes::members::organization, routes::members::list, routes::members::add, routes::members::set_role, routes::members::remove,
        routes::apikeys::create, routes::apikeys::list, routes::apikeys::revoke, routes::apikeys::rotate,
        routes::incidents::create, routes::incidents::list, routes::incidents::read, routes::incidents::update, routes::incidents::remove,
        routes::incidents::comment, routes::incidents::timeline,
        routes::audit::list, routes::audit::verify,
        routes::search::search, routes::search::similar,
        routes::iocs::add, routes::iocs::list, routes::iocs::unlink, routes::iocs::lookup, routes::iocs::extract,
        routes::evidence::upload, routes::evidence::list, routes::evidence::read, routes::evidence::content,
        routes::evidence::custody, routes::evidence::add_custody, routes::evidence::remove,
        routes::events::stream, routes::events::ws, routes::events::ticket, routes::export::export,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&Bearer),
    tags((name = "auth"), (name = "incidents"), (name = "iocs"), (name = "evidence"), (name = "search"), (name = "events"), (name = "organization"), (name = "api-keys"), (name = "audit"), (name = "admin"), (name = "operations"))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}
