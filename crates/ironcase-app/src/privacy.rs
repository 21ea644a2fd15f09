//! Data-subject requests (GDPR Art. 15 and 20, CCPA's right to know): an
//! owner or admin asks what the organisation holds about someone (a member,
//! or anyone by e-mail address); the answer is a machine-readable archive,
//! sealed until it is downloaded — once — or expires. Each request has its
//! 30-day deadline, and is audited. (Erasure comes with crypto-shredding.)

use ironcase_domain::{validate, OrgId, Permission, PrivacyRequestId, Timestamp, UserId, ValidationErrors};
use ironcase_store::privacy::{self as store, RequestRow};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// Days an organisation has to answer.
pub const DEADLINE_DAYS: i64 = 30;
/// Days an archive waits to be downloaded.
pub const ARCHIVE_DAYS: i64 = 7;

/// Whom a request is about.
#[derive(Debug, Clone)]
pub enum Subject {
    Account(UserId),
    Email(String),
}

impl Subject {
    /// The subject named by one of an account id and an e-mail address.
    pub fn one_of(account: Option<UserId>, email: Option<String>) -> Result<Subject> {
        match (account, email) {
            (Some(id), None) => Ok(Subject::Account(id)),
            (None, Some(e)) => Ok(Subject::Email(e)),
            _ => Err(ValidationErrors::one("subject", "give one of account_id and email").into()),
        }
    }
}

fn aad(org: OrgId, id: PrivacyRequestId) -> String {
    format!("privacy-archive:{org}:{id}")
}

impl App {
    /// `POST /privacy/requests`: an access request, answered at once with
    /// an archive of everything held about the subject.
    pub async fn privacy_request_create(&self, p: &Principal, meta: &RequestMeta, subject: Subject) -> Result<RequestRow> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let org = p.org;
        let email = match &subject {
            Subject::Email(e) => {
                let mut errs = ValidationErrors::default();
                let e = validate::email("subject.email", e, &mut errs);
                errs.into_result()?;
                Some(e)
            }
            Subject::Account(_) => None,
        };
        // One snapshot: the subject's account, when they are a member here,
        // and everything held about them.
        let (account, email, data) = self
            .store()
            .read(move |c| {
                let found = match &subject {
                    Subject::Account(u) => Some(ironcase_store::org::get_user(c, *u).map_err(|_| AppError::NotFound)?),
                    Subject::Email(_) => email.as_deref().map(|e| ironcase_store::org::find_user_by_email(c, e)).transpose()?.flatten(),
                };
                let member = match found {
                    Some(u) if ironcase_store::org::membership_role(c, org, u.id)?.is_some() => Some(u),
                    _ => None,
                };
                let (account, email) = match (member, &subject) {
                    (Some(u), _) => (Some(u.id), Some(u.email)),
                    (None, Subject::Account(_)) => return Err(AppError::NotFound),
                    (None, Subject::Email(_)) => (None, email),
                };
                let data = store::subject_data(c, org, account, email.as_deref())?;
                Ok::<_, AppError>((account, email, data))
            })
            .await?;
        let now = self.clock().now();
        let id = PrivacyRequestId::new();
        let archive = json!({
            "request": { "id": id, "kind": "access", "made_at": now, "organization_id": org },
            "subject": { "account_id": account, "email": email },
            "held": data,
        });
        let bytes = serde_json::to_vec_pretty(&archive).map_err(|e| AppError::Internal(e.to_string()))?;
        let sha = crate::crypto::sha256_hex_bytes(&bytes);
        let sealed = self.inner.master.seal(&bytes, &aad(org, id))?;
        let row = RequestRow {
            org,
            id,
            kind: "access".into(),
            subject_id: account,
            subject_email: email,
            status: "completed".into(),
            requested_by: Some(p.actor_id()),
            created_at: now,
            due_at: Timestamp(now.0 + DEADLINE_DAYS * 86_400_000),
            completed_at: Some(now),
            archive_sha256: Some(sha.clone()),
            archive_expires_at: Some(Timestamp(now.0 + ARCHIVE_DAYS * 86_400_000)),
            downloaded_at: None,
        };
        let details = json!({ "kind": "access", "request_id": id, "subject_account": account, "archive_sha256": sha });
        let e = by(p, meta, now, "privacy.request", ("privacy_request", &id.to_string()), details);
        let r2 = row.clone();
        self.store()
            .write(move |c| {
                store::insert(c, &r2, Some(&sealed))?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(row)
    }

    /// `GET /privacy/requests`: newest first.
    pub async fn privacy_requests(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, PrivacyRequestId)>,
        size: PageSize,
    ) -> Result<Page<RequestRow>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let org = p.org;
        let before = cursor.map(|(t, id)| (t, id.to_string()));
        let rows = self.store().read_now(move |c| store::list(c, org, before, size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| keyset(last.created_at.0, last.id)))
    }

    /// `GET /privacy/requests/{id}`.
    pub async fn privacy_request(&self, p: &Principal, meta: &RequestMeta, id: PrivacyRequestId) -> Result<RequestRow> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let org = p.org;
        self.store().read_now(move |c| store::get(c, org, id)).await?.ok_or(AppError::NotFound)
    }

    /// `GET /privacy/requests/{id}/archive`: the archive, once; 410 after
    /// it was downloaded or expired.
    pub async fn privacy_archive(&self, p: &Principal, meta: &RequestMeta, id: PrivacyRequestId) -> Result<Vec<u8>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let (org, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "privacy.archive_downloaded", ("privacy_request", &id.to_string()), json!({}));
        let sealed = self
            .store()
            .write(move |c| {
                if store::get(c, org, id)?.is_none() {
                    return Err(AppError::NotFound);
                }
                let taken = store::take_archive(c, org, id, now)?;
                if taken.is_some() {
                    ironcase_store::audit::append(c, e)?;
                }
                Ok(taken)
            })
            .await?;
        let Some(sealed) = sealed else {
            return Err(AppError::Gone {
                code: ErrorCode::ArchiveGone,
                detail: "the archive was downloaded already, or has expired".into(),
            });
        };
        self.inner.master.open(&sealed, &aad(org, id))
    }
}
