//! Evidence: streamed, hashed and encrypted uploads; verified downloads; the
//! chain of custody; deletion that keeps a tombstone.
//!
//! An upload is three steps so that the HTTP layer can stream the body through
//! it: [`App::evidence_begin`] authorizes and validates before a byte of the
//! file is read, [`Upload::push`] hashes, encrypts and stores each piece as it
//! arrives, and [`App::evidence_finish`] checks the hash and records
//! everything in one transaction. Dropping an `Upload` at any point (an error,
//! a client that went away) removes what was stored.

use std::collections::HashMap;

use ironcase_domain::evidence::{clean_file_name, is_sha256_hex};
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{CustodyAction, EvidenceId, EvidenceKind, IncidentId, OrgId, Permission, Timestamp};
use ironcase_store::blob::{BlobReader, BlobWriter};
use ironcase_store::evidence::{self as store, CustodyRow, EvidenceRow};
use ironcase_store::incident::{self as incidents, IncidentRef, IncidentRow};
use ironcase_store::{audit, event, search};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::by;
use crate::crypto::{DataKey, Opener, Sealer, FRAME, HEADER};
use crate::page::{Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// What the uploader says about the file.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub name: String,
    pub kind: EvidenceKind,
    pub description: Option<String>,
    /// The SHA-256 the client computed; the upload fails when it differs.
    pub sha256: Option<String>,
    pub collected_by: Option<String>,
    pub collected_at: Option<Timestamp>,
}

/// Data keys unsealed so far, by organisation and key id.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: std::sync::Mutex<HashMap<(OrgId, String), DataKey>>,
    current: std::sync::Mutex<HashMap<OrgId, String>>,
}

/// Stored bytes are written to the blob in pieces of about this size.
const WRITE_BATCH: usize = 256 * 1024;

/// An upload in progress. Dropping it discards the stored bytes.
pub struct Upload {
    principal: Principal,
    meta: RequestMeta,
    incident: IncidentId,
    id: EvidenceId,
    input: NewEvidence,
    key_id: String,
    blob_key: String,
    sealer: Option<Sealer>,
    writer: BlobWriter,
    hasher: Sha256,
    size: u64,
    max: u64,
    out: Vec<u8>,
}

impl Upload {
    /// Takes the next piece of the file.
    pub async fn push(&mut self, data: &[u8]) -> Result<()> {
        self.size += data.len() as u64;
        if self.size > self.max {
            return Err(AppError::PayloadTooLarge { limit: self.max });
        }
        self.hasher.update(data);
        match &mut self.sealer {
            Some(s) => s.push(data, &mut self.out)?,
            None => return Err(AppError::Internal("upload already finished".into())),
        }
        if self.out.len() >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.writer.write(&self.out).await.map_err(|e| AppError::Internal(format!("writing evidence: {e}")))?;
        self.out.clear();
        Ok(())
    }
}

fn aad(org: OrgId, id: EvidenceId) -> String {
    format!("evidence:{org}:{id}")
}

fn key_aad(org: OrgId, key_id: &str) -> String {
    format!("data_key:{org}:{key_id}")
}

fn custody_by(p: &Principal, meta: &RequestMeta, action: CustodyAction, at: Timestamp) -> CustodyRow {
    CustodyRow {
        seq: 0,
        action,
        actor_id: Some(p.actor_id()),
        actor_kind: p.actor_kind().to_owned(),
        at,
        source_ip: meta.source_ip.clone(),
        reason: None,
        to: None,
    }
}

fn resource(e: &EvidenceRow) -> (&'static str, String) {
    ("evidence", e.id.to_string())
}

impl App {
    /// The organisation's current data key, created on first use.
    async fn current_data_key(&self, org: OrgId) -> Result<(String, DataKey)> {
        let cached = self.inner.keys.current.lock().ok().and_then(|m| m.get(&org).cloned());
        if let Some(id) = cached {
            return Ok((id.clone(), self.data_key(org, &id).await?));
        }
        let master = self.inner.master.clone();
        let now = self.clock().now();
        // On the writer, so that two first uploads cannot create two keys.
        let (id, sealed) = self
            .store()
            .write(move |c| {
                if let Some(found) = store::data_key_current(c, org)? {
                    return Ok(found);
                }
                let id = uuid::Uuid::now_v7().simple().to_string();
                let (_, sealed) = DataKey::generate(&master, &key_aad(org, &id))?;
                store::data_key_insert(c, org, &id, &sealed, now)?;
                Ok::<_, AppError>((id, sealed))
            })
            .await?;
        let key = DataKey::unwrap(&self.inner.master, &sealed, &key_aad(org, &id))?;
        if let Ok(mut m) = self.inner.keys.keys.lock() {
            m.insert((org, id.clone()), key.clone());
        }
        if let Ok(mut m) = self.inner.keys.current.lock() {
            m.insert(org, id.clone());
        }
        Ok((id, key))
    }

    async fn data_key(&self, org: OrgId, id: &str) -> Result<DataKey> {
        if let Some(k) = self.inner.keys.keys.lock().ok().and_then(|m| m.get(&(org, id.to_owned())).cloned()) {
            return Ok(k);
        }
        let key_id = id.to_owned();
        let sealed = self.store().read_now(move |c| store::data_key(c, org, &key_id)).await?;
        let key = DataKey::unwrap(&self.inner.master, &sealed, &key_aad(org, id))?;
        if let Ok(mut m) = self.inner.keys.keys.lock() {
            m.insert((org, id.to_owned()), key.clone());
        }
        Ok(key)
    }

    /// Authorizes and validates an upload before its file is read.
    pub async fn evidence_begin(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, input: NewEvidence) -> Result<Upload> {
        let org = p.org;
        let incident = self.store().read_now(move |c| incidents::get(c, org, r)).await?;
        let incident = crate::incidents::visible(p, incident)?;
        if !p.may_on_incident(Permission::EvidenceCreate, incident.reporter_id, incident.assignee_id) {
            return Err(self.deny(p, meta, Permission::EvidenceCreate, Some(("incident", incident.id.to_string()))).await);
        }
        let mut errs = ValidationErrors::default();
        let name = match clean_file_name(&input.name) {
            Some(n) => n,
            None => {
                errs.push("name", "must be a file name (not empty, not a path)");
                String::new()
            }
        };
        let description = input.description.as_deref().map(|d| validate::long_text("description", d, 10_000, &mut errs));
        let sha256 = input.sha256.as_deref().map(|h| {
            if !is_sha256_hex(h) {
                errs.push("sha256", "must be 64 hexadecimal digits");
            }
            h.to_ascii_lowercase()
        });
        let collected_by = input.collected_by.as_deref().map(|c| validate::text("collected_by", c, 1, 200, &mut errs));
        if input.collected_at.is_some_and(|t| t > self.clock().now()) {
            errs.push("collected_at", "cannot be in the future");
        }
        errs.into_result()?;
        let input = NewEvidence { name, description, sha256, collected_by, ..input };
        let (key_id, key) = self.current_data_key(org).await?;
        let id = EvidenceId::new();
        let blob_key = format!("{org}/{id}");
        let writer = self.inner.blobs.create(&blob_key).await.map_err(|e| AppError::Internal(format!("creating a blob: {e}")))?;
        let mut out = Vec::with_capacity(WRITE_BATCH + FRAME);
        let sealer = Sealer::new(&key, &aad(org, id), &mut out);
        Ok(Upload {
            principal: p.clone(),
            meta: meta.clone(),
            incident: incident.id,
            id,
            input,
            key_id,
            blob_key,
            sealer: Some(sealer),
            writer,
            hasher: Sha256::new(),
            size: 0,
            max: self.max_evidence_bytes(org).await?,
            out,
        })
    }

    /// Checks the hash, makes the blob durable and records the evidence, its
    /// first custody steps, the event, the audit entry and the search document
    /// in one transaction. Runs to the end even when the client goes away.
    pub async fn evidence_finish(&self, mut up: Upload) -> Result<EvidenceRow> {
        let sealer = up.sealer.take().ok_or_else(|| AppError::Internal("upload already finished".into()))?;
        sealer.finish(&mut up.out)?;
        up.flush().await?;
        let sha256 = hex::encode(up.hasher.finalize_reset());
        if let Some(declared) = &up.input.sha256 {
            if *declared != sha256 {
                return Err(AppError::HashMismatch { declared: declared.clone(), actual: sha256 });
            }
        }
        let app = self.clone();
        tokio::spawn(async move { app.evidence_record(up, sha256).await })
            .await
            .map_err(|e| AppError::Internal(format!("recording evidence: {e}")))?
    }

    async fn evidence_record(&self, up: Upload, sha256: String) -> Result<EvidenceRow> {
        let Upload { principal: p, meta, incident, id, input, key_id, blob_key, writer, size, .. } = up;
        writer.commit().await.map_err(|e| AppError::Internal(format!("storing evidence: {e}")))?;
        let now = self.clock().now();
        let row = EvidenceRow {
            org: p.org,
            id,
            incident_id: incident,
            name: input.name,
            kind: input.kind,
            description: input.description,
            size: size as i64,
            sha256,
            collected_by: input.collected_by,
            collected_at: input.collected_at,
            uploaded_by: p.actor_id(),
            created_at: now,
            data_key_id: key_id,
            blob_key: Some(blob_key.clone()),
            deleted_at: None,
            deleted_by: None,
            delete_reason: None,
        };
        let r2 = row.clone();
        let written = self
            .store()
            .write(move |c| {
                // The incident may have been deleted while the file streamed in.
                incidents::get(c, p.org, IncidentRef::Id(r2.incident_id))?;
                crate::quotas::check_storage(c, &p, &meta, r2.size.max(0) as u64, now)?;
                store::insert(c, &r2)?;
                if r2.collected_by.is_some() || r2.collected_at.is_some() {
                    let mut step = custody_by(&p, &meta, CustodyAction::Collected, r2.collected_at.unwrap_or(now));
                    step.to = r2.collected_by.clone();
                    store::custody_append(c, p.org, r2.id, &step)?;
                }
                store::custody_append(c, p.org, r2.id, &custody_by(&p, &meta, CustodyAction::Uploaded, now))?;
                search::reindex(c, p.org, r2.incident_id)?;
                let data = json!({ "evidence_id": r2.id, "name": r2.name, "kind": r2.kind, "size": r2.size, "sha256": r2.sha256 });
                event::append(c, p.org, Some(r2.incident_id), "evidence.added", Some(&p.actor_id()), &data, now)?;
                let details = json!({ "incident_id": r2.incident_id, "name": r2.name, "size": r2.size, "sha256": r2.sha256 });
                audit::append(c, by(&p, &meta, now, "evidence.upload", ("evidence", &r2.id.to_string()), details))?;
                Ok::<_, AppError>(())
            })
            .await;
        if let Err(e) = written {
            if let Err(del) = self.inner.blobs.delete(&blob_key).await {
                tracing::error!(error = %del, blob = %blob_key, "could not remove the blob of a failed upload");
            }
            return Err(e);
        }
        Ok(row)
    }

    /// The evidence, if the caller may read the incident it belongs to.
    async fn evidence_visible(&self, p: &Principal, meta: &RequestMeta, id: EvidenceId) -> Result<(EvidenceRow, IncidentRow)> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        let (e, i) = self
            .store()
            .read_now(move |c| {
                let e = store::get(c, org, id)?;
                let i = incidents::get(c, org, IncidentRef::Id(e.incident_id))?;
                Ok::<_, AppError>((e, i))
            })
            .await?;
        Ok((e, crate::incidents::visible(p, i)?))
    }

    pub async fn evidence_get(&self, p: &Principal, meta: &RequestMeta, id: EvidenceId) -> Result<EvidenceRow> {
        let e = self.evidence_visible(p, meta, id).await?.0;
        self.audit_read(p, meta, "evidence.read", ("evidence", &e.id.to_string()), json!({ "incident_id": e.incident_id })).await?;
        Ok(e)
    }

    /// The incident's evidence, oldest first (deleted ones as tombstones),
    /// after `cursor` (a keyset: created, id).
    pub async fn evidence_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        r: IncidentRef,
        cursor: Option<(i64, EvidenceId)>,
        size: PageSize,
    ) -> Result<Page<EvidenceRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        let p2 = p.clone();
        let (incident, rows) = self
            .store()
            .read(move |c| {
                let i = crate::incidents::visible(&p2, incidents::get(c, org, r)?)?;
                Ok::<_, AppError>((i.id, store::list(c, org, i.id, cursor, size.fetch())?))
            })
            .await?;
        self.audit_read(p, meta, "evidence.list", ("incident", &incident.to_string()), json!({ "count": rows.len().min(size.get()) }))
            .await?;
        Ok(Page::cut(rows, size, |last| crate::page::keyset(last.created_at.0, last.id)))
    }

    /// The chain of custody in order, after step `after` (the cursor).
    pub async fn custody_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        id: EvidenceId,
        after: Option<i64>,
        size: PageSize,
    ) -> Result<Page<CustodyRow>> {
        let (e, _) = self.evidence_visible(p, meta, id).await?;
        let org = p.org;
        let rows = self.store().read_now(move |c| store::custody(c, org, e.id, after.unwrap_or(0), size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| last.seq.to_string()))
    }

    /// Adds a manual custody record (`transferred`).
    pub async fn custody_add(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        id: EvidenceId,
        action: CustodyAction,
        to: &str,
        reason: &str,
    ) -> Result<CustodyRow> {
        let (e, incident) = self.evidence_visible(p, meta, id).await?;
        if !p.may_on_incident(Permission::EvidenceCreate, incident.reporter_id, incident.assignee_id) {
            return Err(self.deny(p, meta, Permission::EvidenceCreate, Some(resource(&e))).await);
        }
        let mut errs = ValidationErrors::default();
        if action != CustodyAction::Transferred {
            errs.push("action", "only `transferred` can be recorded by hand; the others are recorded by the server");
        }
        let to = validate::text("to", to, 1, 200, &mut errs);
        let reason = validate::text("reason", reason, 1, 2_000, &mut errs);
        errs.into_result()?;
        if e.deleted_at.is_some() {
            return Err(gone());
        }
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let mut step = custody_by(&p2, &meta2, action, now);
                step.to = Some(to.clone());
                step.reason = Some(reason.clone());
                step.seq = store::custody_append(c, p2.org, e.id, &step)?;
                let details = json!({ "action": action, "to": to, "reason": reason });
                audit::append(c, by(&p2, &meta2, now, "evidence.custody", ("evidence", &e.id.to_string()), details))?;
                Ok(step)
            })
            .await
    }

    /// Removes the file and keeps the record as a tombstone, with its hash and
    /// custody history. Lead and above; a reason is required.
    pub async fn evidence_delete(&self, p: &Principal, meta: &RequestMeta, id: EvidenceId, reason: &str) -> Result<EvidenceRow> {
        let (e, _) = self.evidence_visible(p, meta, id).await?;
        if !p.has(Permission::EvidenceDelete) {
            return Err(self.deny(p, meta, Permission::EvidenceDelete, Some(resource(&e))).await);
        }
        let mut errs = ValidationErrors::default();
        let reason = validate::text("reason", reason, 1, 2_000, &mut errs);
        errs.into_result()?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        let (row, blob_key) = self
            .store()
            .write(move |c| {
                let e = store::get(c, p2.org, id)?;
                if !store::mark_deleted(c, p2.org, id, &p2.actor_id(), &reason, now)? {
                    return Err(gone());
                }
                let mut step = custody_by(&p2, &meta2, CustodyAction::Deleted, now);
                step.reason = Some(reason.clone());
                store::custody_append(c, p2.org, id, &step)?;
                search::reindex(c, p2.org, e.incident_id)?;
                let data = json!({ "evidence_id": id, "name": e.name, "reason": reason });
                event::append(c, p2.org, Some(e.incident_id), "evidence.deleted", Some(&p2.actor_id()), &data, now)?;
                let details = json!({ "incident_id": e.incident_id, "name": e.name, "sha256": e.sha256, "size": e.size, "reason": reason });
                audit::append(c, by(&p2, &meta2, now, "evidence.delete", ("evidence", &id.to_string()), details))?;
                Ok::<_, AppError>((store::get(c, p2.org, id)?, e.blob_key))
            })
            .await?;
        if let Some(k) = blob_key {
            if let Err(err) = self.inner.blobs.delete(&k).await {
                tracing::error!(error = %err, blob = %k, "evidence deleted, but its blob could not be removed");
            }
        }
        Ok(row)
    }

    /// Verifies the stored file against its hash, records the download in the
    /// chain of custody and the audit log, and returns a stream of the
    /// original bytes (which checks the hash again as it goes). A file that
    /// fails the check is never served: the failure is recorded and reported.
    pub async fn evidence_download(&self, p: &Principal, meta: &RequestMeta, id: EvidenceId) -> Result<(EvidenceRow, Download)> {
        let (e, _) = self.evidence_visible(p, meta, id).await?;
        if !p.has(Permission::EvidenceDownload) {
            return Err(self.deny(p, meta, Permission::EvidenceDownload, Some(resource(&e))).await);
        }
        let Some(blob_key) = e.blob_key.clone() else {
            return Err(gone());
        };
        let key = self.data_key(e.org, &e.data_key_id).await?;
        let verified = match self.open_download(&e, &blob_key, &key).await {
            Ok(mut d) => {
                let mut ok = true;
                loop {
                    match d.next_chunk().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                ok
            }
            Err(_) => false,
        };
        if !verified {
            self.evidence_integrity_failed(p, meta, &e).await;
            return Err(AppError::IntegrityFailure);
        }
        let now = self.clock().now();
        let (p2, meta2, e2) = (p.clone(), meta.clone(), e.clone());
        self.store()
            .write(move |c| {
                store::custody_append(c, p2.org, e2.id, &custody_by(&p2, &meta2, CustodyAction::Downloaded, now))?;
                let details = json!({ "incident_id": e2.incident_id, "name": e2.name, "sha256": e2.sha256, "size": e2.size });
                audit::append(c, by(&p2, &meta2, now, "evidence.download", ("evidence", &e2.id.to_string()), details))?;
                Ok::<_, AppError>(())
            })
            .await?;
        let d = self.open_download(&e, &blob_key, &key).await.map_err(|_| AppError::IntegrityFailure)?;
        Ok((e, d))
    }

    async fn open_download(&self, e: &EvidenceRow, blob_key: &str, key: &DataKey) -> Result<Download> {
        let mut blob = self.inner.blobs.open(blob_key).await.map_err(|_| AppError::IntegrityFailure)?;
        let mut header = [0u8; HEADER];
        let n = blob.read_full(&mut header).await.map_err(|_| AppError::IntegrityFailure)?;
        let opener = Opener::new(key, &aad(e.org, e.id), &header[..n]).ok_or(AppError::IntegrityFailure)?;
        Ok(Download {
            blob,
            opener,
            hasher: Sha256::new(),
            expected: e.sha256.clone(),
            size: e.size as u64,
            seen: 0,
            next: None,
            done: false,
        })
    }

    /// Records that a stored file failed its check: a custody step and an
    /// audit entry, committed on their own.
    pub async fn evidence_integrity_failed(&self, p: &Principal, meta: &RequestMeta, e: &EvidenceRow) {
        tracing::error!(evidence = %e.id, organization = %e.org, "stored evidence failed its integrity check");
        let now = self.clock().now();
        let (p2, meta2, e2) = (p.clone(), meta.clone(), e.clone());
        let written = self
            .store()
            .write(move |c| {
                store::custody_append(c, p2.org, e2.id, &custody_by(&p2, &meta2, CustodyAction::IntegrityFailure, now))?;
                let mut entry = by(
                    &p2,
                    &meta2,
                    now,
                    "evidence.integrity_failure",
                    ("evidence", &e2.id.to_string()),
                    json!({ "incident_id": e2.incident_id, "sha256": e2.sha256 }),
                );
                entry.outcome = "failure".to_owned();
                audit::append(c, entry)?;
                Ok::<_, AppError>(())
            })
            .await;
        if let Err(err) = written {
            tracing::error!(error = %err, "could not record an integrity failure");
        }
    }
}

fn gone() -> AppError {
    AppError::Gone {
        code: crate::ErrorCode::EvidenceDeleted,
        detail: "this evidence was deleted; its record and custody history remain".into(),
    }
}

/// The original bytes of a stored file, decrypted chunk by chunk. Every chunk
/// is authenticated before it is returned, and the SHA-256 of the whole is
/// compared with the recorded one before the end is reported.
pub struct Download {
    blob: BlobReader,
    opener: Opener,
    hasher: Sha256,
    expected: String,
    size: u64,
    seen: u64,
    /// The frame read ahead, to know which one is the last.
    next: Option<Vec<u8>>,
    done: bool,
}

impl Download {
    pub fn size(&self) -> u64 {
        self.size
    }

    async fn read_frame(&mut self) -> Result<Vec<u8>, crate::crypto::IntegrityError> {
        let mut f = vec![0u8; FRAME];
        let n = self.blob.read_full(&mut f).await.map_err(|_| crate::crypto::IntegrityError)?;
        f.truncate(n);
        Ok(f)
    }

    /// The next piece of the original file, `None` at its verified end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, crate::crypto::IntegrityError> {
        if self.done {
            return Ok(None);
        }
        let mut frame = match self.next.take() {
            Some(f) => f,
            None => self.read_frame().await?,
        };
        let following = if frame.len() == FRAME { self.read_frame().await? } else { Vec::new() };
        let last = following.is_empty();
        self.opener.open(&mut frame, last)?;
        self.hasher.update(&frame);
        self.seen += frame.len() as u64;
        if last {
            self.done = true;
            let actual = hex::encode(self.hasher.finalize_reset());
            if actual != self.expected || self.seen != self.size {
                return Err(crate::crypto::IntegrityError);
            }
        } else {
            self.next = Some(following);
        }
        Ok(Some(frame))
    }
}
