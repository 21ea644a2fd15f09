//! `/compliance/{framework}`: a framework's controls, judged from the
//! organisation's live settings and data, with the figures behind each.

use axum::extract::{Path, State};
use ironcase_app::compliance::Report;
use ironcase_app::{AppError, Principal};
use ironcase_domain::compliance::{Check, Control, ControlStatus, Framework};
use ironcase_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::Meta;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report))
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceCheckOut {
    /// What is checked: `mfa`, `sso`, `privileged_access`, `network_and_sessions`, `api_keys`, `audit_integrity`,
    /// `read_auditing`, `encryption`, `backup`, `incident_response`, `retention`, `breach_notification`,
    /// `data_subject_rights`.
    pub check: String,
    pub status: ControlStatus,
    /// The figures the status was judged from.
    #[schema(value_type = Object)]
    pub figures: serde_json::Value,
    /// What would meet it, when it is not met.
    pub action: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceControlOut {
    /// The framework's own identifier (`CC6.1`, `A.8.5`, `PR.AA-03`, `Art. 33`, `1798.150`).
    pub id: String,
    pub title: String,
    /// The worst of its checks that apply.
    pub status: ControlStatus,
    pub checks: Vec<ComplianceCheckOut>,
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceSummaryOut {
    pub met: usize,
    pub partly: usize,
    pub not_met: usize,
    pub not_applicable: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceReportOut {
    pub framework: Framework,
    pub title: String,
    pub generated_at: Timestamp,
    pub summary: ComplianceSummaryOut,
    pub controls: Vec<ComplianceControlOut>,
}

fn check_out(c: Check) -> ComplianceCheckOut {
    ComplianceCheckOut { check: c.check.to_owned(), status: c.status, figures: c.figures, action: c.action }
}

fn control_out(c: Control) -> ComplianceControlOut {
    ComplianceControlOut {
        id: c.id.to_owned(),
        title: c.title.to_owned(),
        status: c.status,
        checks: c.checks.into_iter().map(check_out).collect(),
    }
}

impl From<Report> for ComplianceReportOut {
    fn from(r: Report) -> Self {
        let s = r.summary;
        let summary = ComplianceSummaryOut { met: s.met, partly: s.partly, not_met: s.not_met, not_applicable: s.not_applicable };
        ComplianceReportOut {
            framework: r.framework,
            title: r.framework.title().to_owned(),
            generated_at: r.generated_at,
            summary,
            controls: r.controls.into_iter().map(control_out).collect(),
        }
    }
}

/// The organisation's standing against a framework (those who may read the
/// audit log); every report made is audited.
#[utoipa::path(get, path = "/compliance/{framework}", tag = "audit", security(("bearer" = [])),
    params(("framework" = Framework, Path)),
    responses((status = 200, body = ComplianceReportOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn report(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(framework): Path<String>,
) -> ApiResult<axum::Json<ComplianceReportOut>> {
    let framework = Framework::parse(&framework).ok_or(AppError::NotFound)?;
    Ok(axum::Json(s.app.compliance_report(&p, &meta, framework).await?.into()))
}
