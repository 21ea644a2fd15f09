//! Offboarding an organisation (platform operators): its data keys are
//! destroyed first — its evidence is unreadable from that commit — then its
//! evidence blobs and its rows go, table by table in bounded batches, and a
//! deletion certificate (what was removed, when, by whom) signed with the
//! audit key is returned and kept in the platform's audit log.

use std::collections::BTreeMap;

use ironcase_domain::OrgId;
use ironcase_store::audit::{self as store_audit, PLATFORM};
use ironcase_store::{offboard, org};
use serde_json::json;

use crate::audit::by;
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// Rows removed per transaction.
const BATCH: i64 = 5_000;

/// What was removed, signed.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate's statement (JSON, as signed).
    pub statement: serde_json::Value,
    /// The statement as a C2SP signed note (its text is the statement's
    /// compact JSON), verifiable with `GET /audit/public-key`.
    pub note: String,
}

impl App {
    /// `DELETE /admin/organizations/{id}`: `confirm` must be its slug. Not
    /// the operator's own organisation, nor one with organisations under it.
    pub async fn org_delete(&self, p: &Principal, meta: &RequestMeta, id: OrgId, confirm: &str) -> Result<Certificate> {
        self.operator_only(p, meta).await?;
        self.require_recent_proof(p)?;
        let o = self.store().read_now(move |c| org::get_org(c, id)).await?;
        if o.slug != confirm {
            return Err(ironcase_domain::ValidationErrors::one("confirm", "must be the organisation's slug").into());
        }
        if p.org == id {
            return Err(AppError::Conflict {
                code: ErrorCode::OwnOrganization,
                detail: "an operator cannot delete the organization they act from".into(),
            });
        }
        let has_children = self.store().read_now(move |c| Ok::<_, AppError>(!org::children(c, id, None, 1)?.is_empty())).await?;
        if has_children {
            return Err(AppError::Conflict {
                code: ErrorCode::HasChildren,
                detail: "the organization has organizations under it: delete or move them first".into(),
            });
        }
        let started = self.clock().now();
        // The keys first, with the organisation suspended: nothing of it can
        // be read or changed from this commit on.
        let (keys, blobs) = self.store().write(move |c| Ok::<_, AppError>(offboard::destroy_keys(c, id)?)).await?;
        let mut removed_blobs = 0;
        for b in &blobs {
            match self.inner.blobs.delete(b).await {
                Ok(()) => removed_blobs += 1,
                Err(e) => tracing::error!(error = %e, blob = %b, "offboarding: a blob could not be removed (its key is destroyed)"),
            }
        }
        let mut removed: BTreeMap<&'static str, i64> = BTreeMap::new();
        for table in offboard::TABLES {
            loop {
                let n = self.store().write(move |c| Ok::<_, AppError>(offboard::remove_rows(c, id, table, BATCH)?)).await?;
                if n > 0 {
                    *removed.entry(table).or_default() += n;
                }
                if n < BATCH {
                    break;
                }
            }
        }
        let now = self.clock().now();
        let statement = json!({
            "certificate": "ironcase organisation deletion",
            "organization": { "id": id, "slug": o.slug, "name": o.name, "created_at": o.created_at },
            "requested_by": p.actor_id(),
            "started_at": started,
            "completed_at": now,
            "data_keys_destroyed": keys,
            "evidence_blobs_removed": removed_blobs,
            "evidence_blobs_left": blobs.len() - removed_blobs,
            "rows_removed": removed,
        });
        let note = self.sign_statement(&statement.to_string());
        let mut e = by(p, meta, now, "organization.deleted", ("organization", &id.to_string()), json!({ "certificate": note }));
        e.tenant = PLATFORM.to_owned();
        self.store().write(move |c| Ok::<_, AppError>(store_audit::append(c, e)?)).await?;
        Ok(Certificate { statement, note })
    }
}
