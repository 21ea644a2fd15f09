//! Data-subject requests (GDPR Art. 15 and 20, CCPA's right to know): an
//! owner or admin asks what the organisation holds about someone (a member,
//! or anyone by e-mail address); the answer is a machine-readable archive,
//! sealed until it is downloaded — once — or expires. Each request has its
//! 30-day deadline, and is audited.
//!
//! Erasure (GDPR Art. 17) destroys the subject's keys: their personal data
//! in the audit log can no longer be read by anyone (crypto-shredding; see
//! `personal.rs`), while every chain, tree and checkpoint still verifies. A
//! member is removed, their sessions and API keys end, their comments stay
//! (the organisation's record) with the author shown as erased, and an
//! account left in no organisation is pseudonymised.

use ironcase_domain::{validate, OrgId, Permission, PrivacyRequestId, Timestamp, UserId, ValidationErrors};
use ironcase_store::audit::EntryRow;
use ironcase_store::org::UserRow;
use ironcase_store::privacy::{self as store, RequestRow};
use ironcase_store::Conn;
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

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A copy of everything held about the subject.
    Access,
    /// Their personal data erased.
    Erasure,
}

/// The subject's e-mail address, checked, when they are named by it.
fn checked_email(subject: &Subject) -> Result<Option<String>> {
    match subject {
        Subject::Email(e) => {
            let mut errs = ValidationErrors::default();
            let e = validate::email("subject.email", e, &mut errs);
            errs.into_result()?;
            Ok(Some(e))
        }
        Subject::Account(_) => Ok(None),
    }
}

/// The subject's account, when they are a member of `org` (named by id and
/// not one: 404), and their address.
fn member_subject(c: &Conn, org: OrgId, subject: &Subject, email: Option<String>) -> Result<(Option<UserRow>, Option<String>)> {
    let found = match subject {
        Subject::Account(u) => Some(ironcase_store::org::get_user(c, *u).map_err(|_| AppError::NotFound)?),
        Subject::Email(_) => email.as_deref().map(|e| ironcase_store::org::find_user_by_email(c, e)).transpose()?.flatten(),
    };
    match found {
        Some(u) if ironcase_store::org::membership_role(c, org, u.id)?.is_some() => {
            let e = u.email.clone();
            Ok((Some(u), Some(e)))
        }
        _ if matches!(subject, Subject::Account(_)) => Err(AppError::NotFound),
        _ => Ok((None, email)),
    }
}

/// Most audit entries an archive lists.
const ARCHIVE_ENTRIES: i64 = 10_000;

impl App {
    /// `POST /privacy/requests`: answered at once.
    pub async fn privacy_request_create(&self, p: &Principal, meta: &RequestMeta, kind: Kind, subject: Subject) -> Result<RequestRow> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        match kind {
            Kind::Access => self.privacy_access(p, meta, subject).await,
            Kind::Erasure => self.privacy_erase(p, meta, subject).await,
        }
    }

    /// An access request: an archive of everything held about the subject.
    async fn privacy_access(&self, p: &Principal, meta: &RequestMeta, subject: Subject) -> Result<RequestRow> {
        let org = p.org;
        let email = checked_email(&subject)?;
        let keys = self.inner.personal.clone();
        // One snapshot: the subject's account, when they are a member here,
        // and everything held about them.
        let (account, email, data) = self
            .store()
            .read(move |c| {
                let (member, email) = member_subject(c, org, &subject, email)?;
                let account = member.map(|u| u.id);
                let mut data = store::subject_data(c, org, account, email.as_deref())?;
                // The audit entries where they act, or that hold their data,
                // with it opened.
                let tenant = org.to_string();
                let subjects: Vec<String> = email.iter().map(|e| keys.email_subject(&tenant, e)).collect();
                let actor = account.map(|u| u.to_string());
                let mut entries = ironcase_store::audit::about(c, &tenant, actor.as_deref(), &subjects, ARCHIVE_ENTRIES)?;
                keys.reveal(c, &tenant, &mut entries)?;
                if let serde_json::Value::Object(m) = &mut data {
                    let items: Vec<_> = entries.iter().map(archived_entry).collect();
                    m.insert("audit_entries".into(), json!({ "truncated": items.len() as i64 >= ARCHIVE_ENTRIES, "items": items }));
                }
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

    /// An erasure request: the subject's keys destroyed, and a member
    /// removed, their sessions and API keys ended, their account
    /// pseudonymised when it is in no other organisation.
    async fn privacy_erase(&self, p: &Principal, meta: &RequestMeta, subject: Subject) -> Result<RequestRow> {
        let org = p.org;
        let email = checked_email(&subject)?;
        let (member, email) = self.store().read(move |c| member_subject(c, org, &subject, email)).await?;
        let account = member.map(|u| u.id);
        if let Some(u) = account {
            if u == p.user_id() {
                return Err(ValidationErrors::one("subject", "you cannot erase yourself: another owner or admin can").into());
            }
            let role = self.store().read(move |c| ironcase_store::org::get_member(c, org, u)).await?.role;
            if !p.role.covers(role) {
                return Err(self.deny(p, meta, Permission::OrganizationManage, Some(("user", u.to_string()))).await);
            }
        }
        let now = self.clock().now();
        let id = PrivacyRequestId::new();
        let tenant = org.to_string();
        let email_subject = email.as_deref().map(|e| self.inner.personal.email_subject(&tenant, e));
        let row = RequestRow {
            org,
            id,
            kind: "erasure".into(),
            subject_id: account,
            // The address is the very data erased: the request keeps only
            // whom it was about when they were a member.
            subject_email: None,
            status: "completed".into(),
            requested_by: Some(p.actor_id()),
            created_at: now,
            due_at: Timestamp(now.0 + DEADLINE_DAYS * 86_400_000),
            completed_at: Some(now),
            archive_sha256: None,
            archive_expires_at: None,
            downloaded_at: None,
        };
        let (p2, meta2, r2) = (p.clone(), meta.clone(), row.clone());
        self.store()
            .write(move |c| {
                let mut subjects: Vec<String> = email_subject.into_iter().collect();
                if let Some(u) = account {
                    let target = ironcase_store::org::get_member(c, org, u)?;
                    crate::members::keep_an_owner(c, org, target.role)?;
                    subjects.push(u.to_string());
                    subjects.extend(store::api_keys_of(c, org, u)?);
                }
                let keys_destroyed = ironcase_store::audit::shred(c, &tenant, &subjects)?;
                let erased = match account {
                    Some(u) => store::erase_member(c, org, u, id, now)?,
                    None => store::Erased::default(),
                };
                store::insert(c, &r2, None)?;
                let details = json!({
                    "kind": "erasure", "request_id": id, "subject_account": account, "keys_destroyed": keys_destroyed,
                    "sessions_ended": erased.sessions_ended, "api_keys_revoked": erased.api_keys_revoked,
                    "pseudonymised": erased.pseudonymised,
                });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "privacy.erasure", ("privacy_request", &id.to_string()), details))?;
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

/// An audit entry as an access archive lists it.
fn archived_entry(e: &EntryRow) -> serde_json::Value {
    json!({
        "seq": e.seq, "at": e.at, "action": e.action, "resource_type": e.resource_type, "resource_id": e.resource_id,
        "outcome": e.outcome, "source_ip": e.source_ip, "user_agent": e.user_agent, "personal_data_erased": e.erased,
        "details": serde_json::from_str::<serde_json::Value>(&e.details).unwrap_or(serde_json::Value::Null),
    })
}
