//! Audit you can prove to someone else. Each tenant's audit entries (an
//! organisation's, and the platform's) are, beside the hash chain, the
//! leaves of an RFC 6962 Merkle tree: leaf `SHA-256(0x00 ‖ entry)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`, the entry being the bytes the chain hashes.
//! A job on every node (taking turns through the store's writer) extends
//! each tree past its last checkpoint once `audit_checkpoint_every` entries
//! or `audit_checkpoint_interval` have passed, checking every entry's link
//! in the chain on the way (a broken chain is never signed), and signs a
//! checkpoint: a C2SP signed note (origin naming the tenant, tree size,
//! base64 root; an Ed25519 signature line) under a server key sealed under
//! the master key. Inclusion and consistency proofs read O(log n) stored
//! hashes. The Merkle arithmetic is Go sumdb/tlog's, as `tlog_tiles` ports
//! it; the signed-note lines are written here (a few lines over
//! `ed25519-dalek`, which the server already uses) and tested against
//! Cloudflare's `signed_note`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use ironcase_domain::audit::PersonalPart;
use ironcase_domain::{Permission, Timestamp};
use ironcase_store::audit::{self as store, CheckpointRow, EntryRow};
use ironcase_store::{session, Conn, Store, StoreError};
use sha2::{Digest, Sha256};
use tlog_tiles::{Hash, HashReader};

use crate::crypto::{self, MasterKey};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// The name of the checkpoint-signing keys in notes and verifier keys.
pub const KEY_NAME: &str = "ironcase-audit";
/// The signature algorithm byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// Entries taken into the tree per write.
const CHUNK: i64 = 10_000;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A tenant's log origin, the first line of its checkpoints.
pub fn origin(tenant: &str) -> String {
    format!("ironcase/audit/{tenant}")
}

/// The signed-note key hash: the first four bytes of
/// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
fn key_hash(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A verifier key as signed notes write them: `name+hash+base64(0x01 ‖ key)`.
pub fn vkey(name: &str, public: &VerifyingKey) -> String {
    let mut k = vec![ED25519];
    k.extend_from_slice(public.as_bytes());
    format!("{name}+{:08x}+{}", key_hash(name, public), b64().encode(k))
}

/// Signs `text` (which ends in a newline) as a note.
fn sign_note(text: &str, name: &str, key: &SigningKey) -> String {
    let sig = key.sign(text.as_bytes());
    let mut line = key_hash(name, &key.verifying_key()).to_be_bytes().to_vec();
    line.extend_from_slice(&sig.to_bytes());
    format!("{text}\n\u{2014} {name} {}\n", b64().encode(line))
}

impl App {
    /// `text` (a statement of this server's, one or more lines) as a note
    /// signed with the current audit key, verifiable with the keys of
    /// `GET /audit/public-key`.
    pub(crate) fn sign_statement(&self, text: &str) -> String {
        let text = if text.ends_with('\n') { text.to_owned() } else { format!("{text}\n") };
        sign_note(&text, KEY_NAME, &self.inner.audit_keys.current.1)
    }
}

/// A key that verifies notes.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key (`name+hash+base64(0x01 ‖ key)`).
    pub fn parse(vkey: &str) -> Option<NoteVerifier> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (name, hash, key) = (parts.next()?, parts.next()?, parts.next()?);
        let hash = u32::from_str_radix(hash, 16).ok()?;
        let raw = b64().decode(key).ok()?;
        let (&alg, key) = raw.split_first()?;
        let key = VerifyingKey::from_bytes(key.try_into().ok()?).ok()?;
        (alg == ED25519 && key_hash(name, &key) == hash && !name.is_empty()).then(|| NoteVerifier { name: name.to_owned(), hash, key })
    }
}

/// Checks a signed note: some signature line by a known key verifies its
/// text. The text (with its final newline), or why not.
pub fn verify_note<'a>(note: &'a str, keys: &[NoteVerifier]) -> std::result::Result<&'a str, String> {
    let split = note.find("\n\n").ok_or("not a signed note: no blank line after the text")?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let mut known = false;
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("\u{2014} ").ok_or("a signature line must start with an em dash")?;
        let (name, sig) = rest.split_once(' ').ok_or("a signature line names its key and then the signature")?;
        let raw = b64().decode(sig).map_err(|_| "a signature is not base64")?;
        if raw.len() != 68 {
            continue;
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        for k in keys.iter().filter(|k| k.name == name && k.hash == hash) {
            known = true;
            let sig = ed25519_dalek::Signature::from_slice(&raw[4..]).map_err(|_| "a signature is malformed")?;
            if k.key.verify_strict(text.as_bytes(), &sig).is_ok() {
                return Ok(text);
            }
        }
    }
    Err(if known { "the signature does not verify".into() } else { "no signature by a known key".into() })
}

/// A checkpoint's text: origin, size and root.
pub fn parse_checkpoint(text: &str) -> std::result::Result<(String, u64, Hash), String> {
    let c = tlog_tiles::Checkpoint::from_bytes(text.as_bytes()).map_err(|_| "not a checkpoint".to_owned())?;
    Ok((c.origin().to_owned(), c.size(), *c.hash()))
}

/// The keys that sign checkpoints, kept (sealed under the master key) with
/// the token keys; the newest signs, every one verifies.
pub(crate) struct AuditKeys {
    current: (String, SigningKey),
    all: Vec<PublicKey>,
}

/// A checkpoint-signing key as anyone may see it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub id: String,
    pub vkey: String,
    pub current: bool,
}

impl AuditKeys {
    pub(crate) async fn load_or_create(store: &Store, master: &MasterKey, _public_url: &str, now: Timestamp) -> Result<AuditKeys> {
        let rows = store.read(session::signing_keys).await?;
        let mut keys = Vec::new();
        for (id, alg, sealed) in rows.into_iter().filter(|(_, alg, _)| alg == "Ed25519") {
            let seed = master.open(&sealed, &format!("signing_key:{id}"))?;
            let seed: [u8; 32] = seed.try_into().map_err(|_| AppError::Internal(format!("signing key {id} is not an Ed25519 seed")))?;
            keys.push((id, alg, SigningKey::from_bytes(&seed)));
        }
        if keys.is_empty() {
            let id = format!("ak_{}", crypto::random_token(9));
            let seed = crypto::random_bytes::<32>();
            let sealed = master.seal(&seed, &format!("signing_key:{id}"))?;
            let kid = id.clone();
            store.write(move |c| session::insert_signing_key(c, &kid, "Ed25519", &sealed, now)).await?;
            keys.push((id, "Ed25519".into(), SigningKey::from_bytes(&seed)));
        }
        // Newest first: the first signs.
        let all = keys
            .iter()
            .enumerate()
            .map(|(i, (id, _, k))| PublicKey { id: id.clone(), vkey: vkey(KEY_NAME, &k.verifying_key()), current: i == 0 })
            .collect();
        let (id, _, key) = keys.swap_remove(0);
        Ok(AuditKeys { current: (id, key), all })
    }
}

/// Reads a tenant's stored tree hashes, those of the current write first.
struct TreeReader<'a, 'c> {
    c: &'a Conn<'c>,
    tenant: &'a str,
    fresh: RefCell<HashMap<u64, Hash>>,
    failed: RefCell<Option<StoreError>>,
}

impl<'a, 'c> TreeReader<'a, 'c> {
    fn new(c: &'a Conn<'c>, tenant: &'a str) -> Self {
        TreeReader { c, tenant, fresh: RefCell::default(), failed: RefCell::default() }
    }

    /// What went wrong when a read failed.
    fn error(&self, e: tlog_tiles::Error) -> AppError {
        match self.failed.borrow_mut().take() {
            Some(e) => e.into(),
            None => AppError::Internal(format!("audit tree: {e}")),
        }
    }
}

impl HashReader for TreeReader<'_, '_> {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<Hash>, tlog_tiles::Error> {
        let fresh = self.fresh.borrow();
        let missing: Vec<i64> = indexes.iter().filter(|i| !fresh.contains_key(i)).map(|i| *i as i64).collect();
        let read = match store::tree_hashes(self.c, self.tenant, &missing) {
            Ok(r) => r,
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                return Err(tlog_tiles::Error::IndexesNotInTree);
            }
        };
        let mut read = read.into_iter();
        indexes
            .iter()
            .map(|i| match fresh.get(i) {
                Some(h) => Ok(*h),
                None => read
                    .next()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| b.try_into().ok())
                    .map(Hash)
                    .ok_or(tlog_tiles::Error::MalformedHash),
            })
            .collect()
    }
}

/// An inclusion proof: the entry's leaf hash and the path to the root.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub seq: i64,
    pub size: i64,
    pub leaf_hash: Hash,
    pub root: Hash,
    pub proof: Vec<Hash>,
}

/// A consistency proof between two sizes of one tree.
#[derive(Debug, Clone)]
pub struct Consistency {
    pub from: i64,
    pub to: i64,
    pub from_root: Hash,
    pub to_root: Hash,
    pub proof: Vec<Hash>,
}

/// The root a checkpoint of `size` signed, when `k` is one.
fn signed_root(k: Option<&CheckpointRow>, size: i64) -> Option<Hash> {
    let k = k.filter(|k| k.size == size)?;
    hex32(&k.root).map(Hash)
}

/// The leaf hash of an entry.
pub fn leaf_hash(e: &EntryRow) -> Hash {
    tlog_tiles::record_hash(&e.leaf())
}

impl App {
    /// Extends one tenant's tree by up to `CHUNK` entries (never past
    /// `upto`) and signs a checkpoint at its new size; whether it reached
    /// `upto`. An entry whose link in the chain does not check out stops it
    /// (nothing signed).
    async fn extend_tree(&self, tenant: String, upto: i64) -> Result<bool> {
        let now = self.clock().now();
        let (key_id, key) = (self.inner.audit_keys.current.0.clone(), self.inner.audit_keys.current.1.clone());
        // Reading the entries and hashing them take no turn of the writer
        // (which every change waits for); the write only stores the result,
        // if no other node stored it first.
        let t = tenant.clone();
        let built = self
            .store()
            .read_now(move |c| {
                let last = store::latest_checkpoint(c, &t)?;
                let size = last.as_ref().map_or(0, |k| k.size);
                if size >= upto {
                    return Ok::<_, AppError>(None);
                }
                let mut prev = match size {
                    0 => ironcase_domain::audit::GENESIS.to_owned(),
                    _ => match store::entries_from(c, &t, size, 1)?.pop().filter(|e| e.seq == size) {
                        Some(e) => e.hash,
                        // Retention pruned up to this checkpoint.
                        None => store::pruned(c, &t)?.filter(|p| p.0 == size).map(|p| p.1).ok_or(StoreError::NotFound)?,
                    },
                };
                let entries = store::entries_from(c, &t, size + 1, CHUNK.min(upto - size))?;
                let reader = TreeReader::new(c, &t);
                let mut new = Vec::with_capacity(entries.len() * 2);
                for (i, e) in entries.iter().enumerate() {
                    let n = (size + i as i64) as u64;
                    if e.seq != n as i64 + 1 || e.prev_hash != prev || !e.hashes_right() {
                        return Err(AppError::Internal(format!("audit chain of {t} does not check out at {}: not signed", n + 1)));
                    }
                    prev = e.hash.clone();
                    let hashes = tlog_tiles::stored_hashes_for_record_hash(n, leaf_hash(e), &reader).map_err(|x| reader.error(x))?;
                    let at = tlog_tiles::stored_hash_index(0, n);
                    let mut fresh = reader.fresh.borrow_mut();
                    for (j, h) in hashes.into_iter().enumerate() {
                        fresh.insert(at + j as u64, h);
                        new.push(hex::encode(h.0));
                    }
                }
                let new_size = size + entries.len() as i64;
                if new_size == size {
                    return Ok(None);
                }
                let root = tlog_tiles::tree_hash(new_size as u64, &reader).map_err(|x| reader.error(x))?;
                Ok(Some((size, new_size, new, root)))
            })
            .await?;
        let Some((size, new_size, new, root)) = built else { return Ok(true) };
        let text = tlog_tiles::Checkpoint::new(&origin(&tenant), new_size as u64, root, "")
            .map_err(|_| AppError::Internal("a checkpoint's origin is empty".into()))?
            .to_bytes();
        let note = sign_note(&String::from_utf8_lossy(&text), KEY_NAME, &key);
        let k = CheckpointRow { tenant: tenant.clone(), size: new_size, root: hex::encode(root.0), note, key_id, at: now };
        self.store()
            .write(move |c| {
                // Another node got there first: its tree is this one.
                if store::latest_checkpoint(c, &tenant)?.map_or(0, |k| k.size) != size {
                    return Ok::<_, AppError>(());
                }
                store::put_tree_hashes(c, &tenant, tlog_tiles::stored_hash_count(size as u64) as i64, &new)?;
                store::put_checkpoint(c, &k)?;
                Ok(())
            })
            .await?;
        Ok(new_size >= upto)
    }

    /// One round of the checkpoint job: every tenant whose chain is
    /// `audit_checkpoint_every` entries past its last checkpoint, or has
    /// any entry past it `audit_checkpoint_interval` after it, is taken
    /// into its tree and signed. How many checkpoints were signed.
    pub async fn checkpoint_round(&self) -> Result<usize> {
        let now = self.clock().now();
        let (every, interval) = (self.settings().audit_checkpoint_every as i64, self.settings().audit_checkpoint_interval);
        let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let due = self
            .store()
            .read_now(move |c| {
                Ok::<_, AppError>(
                    store::heads(c)?
                        .into_iter()
                        .filter(|h| {
                            let at = h.signed_at.map_or(i64::MIN / 2, |t| t.0);
                            h.seq > h.signed_size && (h.seq - h.signed_size >= every || now.0 - at >= interval)
                        })
                        .map(|h| (h.tenant, h.seq))
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        let mut signed = 0;
        for (tenant, upto) in due {
            loop {
                match self.extend_tree(tenant.clone(), upto).await {
                    Ok(done) => {
                        signed += 1;
                        if done {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(tenant = %tenant, error = %e, "could not extend an audit tree");
                        break;
                    }
                }
            }
        }
        Ok(signed)
    }

    /// `GET /audit/public-key`: the keys that sign checkpoints.
    pub fn audit_public_keys(&self) -> Vec<PublicKey> {
        self.inner.audit_keys.all.clone()
    }

    /// `GET /audit/checkpoint`: the organisation's latest signed checkpoint.
    pub async fn audit_checkpoint(&self, p: &Principal, meta: &RequestMeta) -> Result<CheckpointRow> {
        self.require(p, meta, Permission::AuditRead).await?;
        let tenant = p.org.to_string();
        self.store().read_now(move |c| store::latest_checkpoint(c, &tenant)?.ok_or(AppError::NotFound)).await
    }

    /// `GET /audit/proof/inclusion?seq=&size=`: entry `seq` is in the tree
    /// of `size` entries (default: the latest checkpoint's).
    pub async fn audit_inclusion(&self, p: &Principal, meta: &RequestMeta, seq: i64, size: Option<i64>) -> Result<Inclusion> {
        self.require(p, meta, Permission::AuditRead).await?;
        let tenant = p.org.to_string();
        self.store()
            .read_now(move |c| {
                let latest = store::latest_checkpoint(c, &tenant)?;
                let built = latest.as_ref().map_or(0, |k| k.size);
                let size = size.unwrap_or(built);
                let mut errs = ironcase_domain::validate::ValidationErrors::default();
                if size < 1 || size > built {
                    errs.push("size", format!("must be a tree size from 1 to the latest checkpoint's ({built})"));
                }
                if seq < 1 || seq > size {
                    errs.push("seq", "must be an entry within the tree of that size");
                }
                errs.into_result()?;
                // The leaf is the tree's own stored hash (level 0): no need
                // to read the entry (it may even have been pruned since).
                let reader = TreeReader::new(c, &tenant);
                let leaf = reader
                    .read_hashes(&[tlog_tiles::stored_hash_index(0, (seq - 1) as u64)])
                    .map_err(|x| reader.error(x))?
                    .pop()
                    .ok_or(AppError::NotFound)?;
                let proof = tlog_tiles::prove_record(size as u64, (seq - 1) as u64, &reader).map_err(|x| reader.error(x))?;
                let root = match signed_root(latest.as_ref(), size) {
                    Some(r) => r,
                    None => tlog_tiles::tree_hash(size as u64, &reader).map_err(|x| reader.error(x))?,
                };
                Ok(Inclusion { seq, size, leaf_hash: leaf, root, proof })
            })
            .await
    }

    /// `GET /audit/proof/consistency?from=&to=`: the tree of `to` entries
    /// extends the tree of `from`.
    pub async fn audit_consistency(&self, p: &Principal, meta: &RequestMeta, from: i64, to: Option<i64>) -> Result<Consistency> {
        self.require(p, meta, Permission::AuditRead).await?;
        let tenant = p.org.to_string();
        self.store()
            .read_now(move |c| {
                let latest = store::latest_checkpoint(c, &tenant)?;
                let built = latest.as_ref().map_or(0, |k| k.size);
                let to = to.unwrap_or(built);
                let mut errs = ironcase_domain::validate::ValidationErrors::default();
                if to < 1 || to > built {
                    errs.push("to", format!("must be a tree size from 1 to the latest checkpoint's ({built})"));
                }
                if from < 1 || from > to {
                    errs.push("from", "must be a tree size from 1 to `to`");
                }
                errs.into_result()?;
                let reader = TreeReader::new(c, &tenant);
                let proof = tlog_tiles::prove_tree(to as u64, from as u64, &reader).map_err(|x| reader.error(x))?;
                let from_root = tlog_tiles::tree_hash(from as u64, &reader).map_err(|x| reader.error(x))?;
                let to_root = match signed_root(latest.as_ref(), to) {
                    Some(r) => r,
                    None => tlog_tiles::tree_hash(to as u64, &reader).map_err(|x| reader.error(x))?,
                };
                Ok(Consistency { from, to, from_root, to_root, proof })
            })
            .await
    }
}

/// An entry as the audit export writes it: every field the chain hashes,
/// `details` as the exact stored text.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportedEntry {
    pub tenant: String,
    pub seq: i64,
    pub at: i64,
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
    /// For people's formats (CSV): some of its personal data was erased.
    #[serde(skip)]
    pub personal_data_erased: bool,
}

/// An entry whose personal data is sealed (version 2), as the export
/// writes it: every field the chain hashes, in their canonical order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportedSealed {
    pub v: u8,
    pub tenant: String,
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub details: String,
    pub personal: Vec<PersonalPart>,
    pub prev_hash: String,
    pub hash: String,
}

impl ExportedSealed {
    fn bytes(&self) -> Vec<u8> {
        ironcase_domain::audit::CanonicalV2 {
            v: self.v,
            tenant: &self.tenant,
            seq: self.seq,
            at: self.at,
            actor_id: self.actor_id.as_deref(),
            actor_kind: &self.actor_kind,
            action: &self.action,
            resource_type: self.resource_type.as_deref(),
            resource_id: self.resource_id.as_deref(),
            outcome: &self.outcome,
            request_id: self.request_id.as_deref(),
            details: &self.details,
            personal: &self.personal,
        }
        .bytes()
    }
}

impl From<EntryRow> for ExportedSealed {
    fn from(e: EntryRow) -> Self {
        ExportedSealed {
            v: 2,
            tenant: e.tenant,
            seq: e.seq,
            at: e.at.0,
            actor_id: e.actor_id,
            actor_kind: e.actor_kind,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            request_id: e.request_id,
            details: e.details,
            personal: e.personal.into_iter().map(|p| p.part).collect(),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// A data subject's share of a sealed entry, opened: the salt (hex) and
/// the fields (JSON text) its commitment binds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OpenedPart {
    pub s: String,
    pub salt: String,
    pub fields: String,
}

impl From<EntryRow> for ExportedEntry {
    fn from(e: EntryRow) -> Self {
        ExportedEntry {
            tenant: e.tenant,
            seq: e.seq,
            at: e.at.0,
            actor_id: e.actor_id,
            actor_kind: e.actor_kind,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            request_id: e.request_id,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
            personal_data_erased: e.erased,
        }
    }
}

/// One line of an audit export.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine {
    /// First: whose log, and the origin its checkpoints name.
    Header {
        tenant: String,
        origin: String,
        exported_at: Timestamp,
    },
    /// After the header, when retention removed the first `size` entries:
    /// the last removed one's hash (the next entry's `prev_hash`) and the
    /// tree's hashes over them (hex; the roots of its complete subtrees,
    /// largest first), which a checkpoint of `size` or more signs.
    Pruned {
        size: i64,
        hash: String,
        frontier: Vec<String>,
    },
    Entry(Box<ExportedEntry>),
    /// Just before a sealed entry: the personal data of it that can still
    /// be read (parts erased at a data subject's request are left out).
    Personal {
        seq: i64,
        parts: Vec<OpenedPart>,
    },
    /// An entry whose personal data is sealed: the chain hashes only the
    /// commitments to it.
    SealedEntry(Box<ExportedSealed>),
    /// After the entries: every signed checkpoint up to the last entry.
    Checkpoint {
        size: i64,
        note: String,
    },
    /// Last: how many entries (a file without it was cut short).
    End {
        entries: i64,
    },
}

/// An audit export under way: its pages, then its checkpoints.
pub struct AuditExport {
    app: App,
    tenant: String,
    next: i64,
    head: i64,
    checkpoints_done: bool,
    /// The pruned prefix: its size, and its line until written.
    pruned_size: i64,
    pruned: Option<ExportLine>,
    /// For people (CSV): entries with their personal data filled in,
    /// rather than as the chain hashes them.
    revealed: bool,
    pub origin: String,
    pub started_at: Timestamp,
}

/// Entries read per page of an export.
const EXPORT_PAGE: i64 = 5000;

impl App {
    /// `GET /audit/export`: authorizes and audits an export of the
    /// organisation's whole audit log (with the checkpoints that sign it),
    /// and returns it ready to read.
    /// `revealed`: for people (CSV), entries with their personal data filled
    /// in; otherwise as the chain hashes them, each sealed one after the
    /// personal data of it that can still be read.
    pub async fn audit_export_start(&self, p: &Principal, meta: &RequestMeta, revealed: bool) -> Result<AuditExport> {
        self.require(p, meta, Permission::AuditRead).await?;
        self.require_recent_proof(p)?;
        let now = self.clock().now();
        let tenant = p.org.to_string();
        let format = if revealed { "csv" } else { "ndjson" };
        let e = crate::audit::by(p, meta, now, "audit.export", ("organization", &tenant), serde_json::json!({ "format": format }));
        self.write_audit(e).await?;
        let t = tenant.clone();
        let (head, pruned) = self
            .store()
            .read_now(move |c| {
                let head = store::head(c, &t)?.map_or(0, |h| h.0);
                let Some((size, hash)) = store::pruned(c, &t)? else { return Ok::<_, AppError>((head, None)) };
                let idx: Vec<i64> = frontier(size as u64).into_iter().map(|i| i as i64).collect();
                let frontier = store::tree_hashes(c, &t, &idx)?;
                Ok((head, Some(ExportLine::Pruned { size, hash, frontier })))
            })
            .await?;
        let pruned_size = match &pruned {
            Some(ExportLine::Pruned { size, .. }) => *size,
            _ => 0,
        };
        Ok(AuditExport {
            app: self.clone(),
            origin: origin(&tenant),
            tenant,
            next: pruned_size + 1,
            head,
            checkpoints_done: false,
            pruned_size,
            pruned,
            revealed,
            started_at: now,
        })
    }
}

impl AuditExport {
    /// The next lines (entries, then checkpoints); `None` when all were read.
    pub async fn next_lines(&mut self) -> Result<Option<Vec<ExportLine>>> {
        if let Some(l) = self.pruned.take() {
            return Ok(Some(vec![l]));
        }
        let (tenant, from, head) = (self.tenant.clone(), self.next, self.head);
        if from <= head {
            let n = EXPORT_PAGE.min(head - from + 1);
            let (keys, revealed) = (self.app.inner.personal.clone(), self.revealed);
            let lines = self
                .app
                .store()
                .read(move |c| {
                    let mut rows = store::entries_from(c, &tenant, from, n)?;
                    if revealed {
                        keys.reveal(c, &tenant, &mut rows)?;
                        return Ok::<_, AppError>(rows.into_iter().map(|e| ExportLine::Entry(Box::new(e.into()))).collect::<Vec<_>>());
                    }
                    let opened = keys.open(c, &tenant, &rows)?;
                    let mut lines = Vec::with_capacity(rows.len() * 2);
                    for (e, parts) in rows.into_iter().zip(opened) {
                        if e.v < 2 {
                            lines.push(ExportLine::Entry(Box::new(e.into())));
                            continue;
                        }
                        let parts: Vec<OpenedPart> = e
                            .personal
                            .iter()
                            .zip(parts)
                            .filter_map(|(p, o)| o.map(|o| OpenedPart { s: p.part.s.clone(), salt: hex::encode(o.salt), fields: o.fields }))
                            .collect();
                        if !parts.is_empty() {
                            lines.push(ExportLine::Personal { seq: e.seq, parts });
                        }
                        lines.push(ExportLine::SealedEntry(Box::new(e.into())));
                    }
                    Ok(lines)
                })
                .await?;
            self.next = lines
                .iter()
                .rev()
                .find_map(|l| match l {
                    ExportLine::Entry(e) => Some(e.seq + 1),
                    ExportLine::SealedEntry(e) => Some(e.seq + 1),
                    _ => None,
                })
                .unwrap_or(head + 1);
            return Ok(Some(lines));
        }
        if self.checkpoints_done {
            return Ok(None);
        }
        self.checkpoints_done = true;
        // Those over a pruned prefix only: the others' entries are gone.
        let after = (self.pruned_size - 1).max(0);
        let rows = self.app.store().read(move |c| Ok::<_, AppError>(store::checkpoints(c, &tenant, after, i64::MAX)?)).await?;
        Ok(Some(rows.into_iter().filter(|k| k.size <= head).map(|k| ExportLine::Checkpoint { size: k.size, note: k.note }).collect()))
    }
}

/// What an offline verification of an export found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub tenant: String,
    /// Entries retention removed before the first in the file (their tree
    /// hashes stand for them).
    pub pruned: i64,
    pub entries: i64,
    /// The checkpoints whose signature and root checked out.
    pub checkpoints: i64,
    /// The largest size a checkpoint proved.
    pub proven: i64,
    /// Parts of sealed entries' personal data found and matching their
    /// commitments; and those left out (erased).
    pub personal: i64,
    pub erased: i64,
    /// Hex of the chain's last hash.
    pub head: Option<String>,
    pub ok: bool,
    /// The first sequence number that does not check out.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// The in-memory tree of an offline verification: the stored hashes from
/// `base` on, and below it those of a pruned prefix's complete subtrees.
#[derive(Default)]
struct MemoryTree {
    base: u64,
    frontier: HashMap<u64, Hash>,
    hashes: Vec<Hash>,
}

fn frontier_len(n: u64) -> usize {
    n.count_ones() as usize
}

/// The stored-hash indexes of the complete subtrees of a tree of `n`
/// leaves, largest first: all a tree needs of its first `n` leaves to grow.
pub fn frontier(n: u64) -> Vec<u64> {
    let (mut out, mut start) = (Vec::new(), 0u64);
    for level in (0..64u8).rev() {
        if n & (1 << level) != 0 {
            out.push(tlog_tiles::stored_hash_index(level, start >> level));
            start += 1 << level;
        }
    }
    out
}

impl MemoryTree {
    /// A tree whose first `n` leaves were pruned, from their subtrees' hashes.
    fn pruned(n: u64, hashes: &[Hash]) -> MemoryTree {
        let frontier = frontier(n).into_iter().zip(hashes.iter().copied()).collect();
        MemoryTree { base: tlog_tiles::stored_hash_count(n), frontier, hashes: Vec::new() }
    }

    fn get(&self, i: u64) -> Option<Hash> {
        match i.checked_sub(self.base) {
            Some(j) => self.hashes.get(j as usize).copied(),
            None => self.frontier.get(&i).copied(),
        }
    }

    /// Appends record `n`'s stored hashes (what `tlog_tiles::stored_hashes`
    /// returns, without its allocations): the leaf, then each subtree it
    /// completes.
    fn push(&mut self, n: u64, leaf: Hash) {
        let mut h = leaf;
        self.hashes.push(h);
        for i in 0..(n + 1).trailing_zeros() {
            // A frontier short of a hash makes a root no checkpoint signs.
            let left = self.get(tlog_tiles::stored_hash_index(i as u8, (n >> i) - 1)).unwrap_or(Hash([0; 32]));
            h = tlog_tiles::node_hash(left, h);
            self.hashes.push(h);
        }
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<Hash>, tlog_tiles::Error> {
        indexes.iter().map(|i| self.get(*i).ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

/// An entry line as the verifier reads it: borrowed from the line where it
/// can be.
#[derive(serde::Deserialize)]
struct EntryRef<'a> {
    #[serde(borrow)]
    tenant: std::borrow::Cow<'a, str>,
    seq: i64,
    at: i64,
    #[serde(borrow)]
    actor_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    actor_kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    resource_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    resource_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    outcome: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    source_ip: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    details: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    prev_hash: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    hash: std::borrow::Cow<'a, str>,
}

/// An opened part's subject and the commitment its salt and fields make
/// (`None`: not well formed).
type Commitment = (String, Option<[u8; 32]>);

/// A line of the export, parsed and, for an entry, hashed (by a worker).
enum Item {
    Header {
        tenant: String,
        origin: String,
    },
    Pruned {
        size: i64,
        hash: String,
        frontier: Vec<String>,
    },
    /// A sealed entry's opened parts: each subject and the commitment its
    /// salt and fields make (`None`: not well formed).
    Personal {
        seq: i64,
        parts: Vec<Commitment>,
    },
    Entry(Checked),
    Checkpoint(String),
    End(i64),
}

struct Checked {
    seq: i64,
    /// A digest of its tenant, to compare with the header's.
    tenant: u64,
    prev: Option<[u8; 32]>,
    hash: Option<[u8; 32]>,
    /// Whether it hashes to `hash` after `prev`.
    hashes_right: bool,
    leaf: Hash,
    /// A sealed entry's commitments to its personal data.
    parts: Vec<PersonalPart>,
}

fn tenant_digest(t: &str) -> u64 {
    use std::hash::{Hash as _, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// An entry line as the export writes it (`kind`, then the entry's fields
/// in their canonical order, then `prev_hash` and `hash`): its canonical
/// bytes are the line's own, between the `kind` and the hashes, so it is
/// hashed as written, without parsing it. `None` for any other shape (the
/// slow path parses it). Sound either way: only bytes that hash to the
/// chain pass.
fn written_entry(line: &[u8]) -> Option<Item> {
    const ENTRY: &[u8] = br#"{"kind":"entry","#;
    const SEALED: &[u8] = br#"{"kind":"sealed_entry","#;
    const TAIL: usize = 14 + 64 + 10 + 64 + 2;
    let (body_start, sealed) = if line.starts_with(ENTRY) {
        (ENTRY.len(), false)
    } else if line.starts_with(SEALED) {
        (SEALED.len(), true)
    } else {
        return None;
    };
    let body_end = line.len().checked_sub(TAIL)?;
    let tail = line.get(body_end..)?;
    let after = tail.strip_prefix(br#","prev_hash":""#)?;
    let (prev_hex, after) = (after.get(..64)?, after.get(64..)?);
    let hash = after.strip_prefix(br#"","hash":""#)?.strip_suffix(br#""}"#)?;
    let body = line.get(body_start..body_end)?;
    let rest = if sealed { body.strip_prefix(br#""v":2,"tenant":""#)? } else { body.strip_prefix(br#""tenant":""#)? };
    let quote = rest.iter().position(|b| *b == b'"')?;
    let (tenant, after) = rest.split_at(quote);
    let digits = after.strip_prefix(br#"","seq":"#)?;
    let end = digits.iter().position(|b| *b == b',')?;
    let seq: i64 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
    let (prev, hash) = (hex32(std::str::from_utf8(prev_hex).ok()?)?, hex32(std::str::from_utf8(hash).ok()?)?);
    // The commitments are the last field: `,"personal":` cannot occur in a
    // string before it (a quote there is escaped).
    let parts = if sealed {
        const PERSONAL: &[u8] = br#","personal":"#;
        let at = body.windows(PERSONAL.len()).rposition(|w| w == PERSONAL)?;
        serde_json::from_slice(&body[at + PERSONAL.len()..]).ok()?
    } else {
        Vec::new()
    };
    let mut h = Sha256::new();
    h.update(b"{");
    h.update(body);
    h.update(b"}");
    let mut chained = h.clone();
    chained.update(prev_hex);
    let own: [u8; 32] = chained.finalize().into();
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(b"{");
    leaf.update(body);
    leaf.update(b"}");
    Some(Item::Entry(Checked {
        seq,
        tenant: tenant_digest(std::str::from_utf8(tenant).ok()?),
        prev: Some(prev),
        hash: Some(hash),
        hashes_right: own == hash,
        leaf: Hash(leaf.finalize().into()),
        parts,
    }))
}

/// A `personal` line, parsed in place: each part's subject and the
/// commitment its salt and fields make.
fn personal_item(line: &[u8]) -> std::result::Result<Item, String> {
    #[derive(serde::Deserialize)]
    struct Part<'a> {
        #[serde(borrow)]
        s: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        salt: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        fields: std::borrow::Cow<'a, str>,
    }
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        seq: i64,
        #[serde(borrow)]
        parts: Vec<Part<'a>>,
    }
    let l: Line<'_> = serde_json::from_slice(line).map_err(|e| format!("not an audit export line ({e})"))?;
    let parts = l
        .parts
        .into_iter()
        .map(|p| {
            let c = hex32(&p.salt).map(|salt| ironcase_domain::audit::commit_bytes(&salt, &p.fields));
            (p.s.into_owned(), c)
        })
        .collect();
    Ok(Item::Personal { seq: l.seq, parts })
}

/// Checks a sealed entry parsed from its line.
fn sealed_checked(e: &ExportedSealed) -> Item {
    let bytes = e.bytes();
    let hash = hex32(&e.hash);
    let own: Option<[u8; 32]> = hex32(&ironcase_domain::audit::chain_hash(&bytes, &e.prev_hash));
    Item::Entry(Checked {
        seq: e.seq,
        tenant: tenant_digest(&e.tenant),
        prev: hex32(&e.prev_hash),
        hashes_right: e.v == 2 && hash.is_some() && hash == own,
        hash,
        leaf: tlog_tiles::record_hash(&bytes),
        parts: e.personal.clone(),
    })
}

/// Parses and hashes one line (`buf` is reused for the entry's bytes).
fn item(line: &[u8], buf: &mut Vec<u8>) -> std::result::Result<Item, String> {
    if let Some(Item::Entry(e)) = written_entry(line) {
        if e.hashes_right {
            return Ok(Item::Entry(e));
        }
    }
    if line.starts_with(br#"{"kind":"personal","#) {
        return personal_item(line);
    }
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let entry = if line.starts_with(r#"{"kind":"entry","#) {
        serde_json::from_str::<EntryRef<'_>>(line).map_err(|e| format!("not an audit export line ({e})"))?
    } else {
        return match serde_json::from_str::<ExportLine>(line).map_err(|e| format!("not an audit export line ({e})"))? {
            ExportLine::Header { tenant, origin, .. } => Ok(Item::Header { tenant, origin }),
            ExportLine::Pruned { size, hash, frontier } => Ok(Item::Pruned { size, hash, frontier }),
            ExportLine::Entry(e) => {
                let json = serde_json::to_string(&e).map_err(|e| e.to_string())?;
                let json = format!(r#"{{"kind":"entry",{}"#, &json[1..]);
                item(json.as_bytes(), buf)
            }
            ExportLine::SealedEntry(e) => Ok(sealed_checked(&e)),
            ExportLine::Personal { seq, parts } => Ok(Item::Personal {
                seq,
                parts: parts
                    .into_iter()
                    .map(|p| {
                        let c = hex32(&p.salt).map(|salt| ironcase_domain::audit::commit_bytes(&salt, &p.fields));
                        (p.s, c)
                    })
                    .collect(),
            }),
            ExportLine::Checkpoint { note, .. } => Ok(Item::Checkpoint(note)),
            ExportLine::End { entries } => Ok(Item::End(entries)),
        };
    };
    let c = ironcase_domain::audit::Canonical {
        tenant: &entry.tenant,
        seq: entry.seq,
        at: entry.at,
        actor_id: entry.actor_id.as_deref(),
        actor_kind: &entry.actor_kind,
        action: &entry.action,
        resource_type: entry.resource_type.as_deref(),
        resource_id: entry.resource_id.as_deref(),
        outcome: &entry.outcome,
        request_id: entry.request_id.as_deref(),
        source_ip: entry.source_ip.as_deref(),
        user_agent: entry.user_agent.as_deref(),
        details: &entry.details,
    };
    buf.clear();
    serde_json::to_writer(&mut *buf, &c).map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    h.update(&buf[..]);
    h.update(entry.prev_hash.as_bytes());
    let own: [u8; 32] = h.finalize().into();
    let hash = hex32(&entry.hash);
    Ok(Item::Entry(Checked {
        seq: entry.seq,
        tenant: tenant_digest(&entry.tenant),
        prev: hex32(&entry.prev_hash),
        hashes_right: hash == Some(own),
        hash,
        leaf: tlog_tiles::record_hash(buf),
        parts: Vec::new(),
    }))
}

/// Reads the export in blocks of whole lines, hashes them on every core,
/// and hands the items back in order to `fold`.
fn parallel_items(
    mut input: impl std::io::Read + Send,
    mut fold: impl FnMut(Item) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    use std::sync::mpsc;
    const BLOCK: usize = 1 << 20;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = mpsc::sync_channel::<(usize, usize, Vec<u8>)>(workers * 2);
        let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<(usize, std::result::Result<Vec<Item>, String>)>(workers * 4);
        for _ in 0..workers {
            let (rx, tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let mut buf = Vec::with_capacity(1024);
                loop {
                    let job = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((n, first_line, bytes)) = job else { return };
                    let out = bytes
                        .split(|b| *b == b'\n')
                        .enumerate()
                        .filter(|(_, l)| !l.is_empty())
                        .map(|(i, l)| item(l, &mut buf).map_err(|e| format!("line {}: {e}", first_line + i + 1)))
                        .collect::<std::result::Result<Vec<_>, _>>();
                    if tx.send((n, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let reader = scope.spawn(move || -> std::result::Result<(), String> {
            let (mut carry, mut n, mut lines) = (Vec::new(), 0usize, 0usize);
            loop {
                let mut block = std::mem::take(&mut carry);
                let start = block.len();
                block.resize(start + BLOCK, 0);
                let got = input.read(&mut block[start..]).map_err(|e| e.to_string())?;
                block.truncate(start + got);
                if got == 0 {
                    if !block.is_empty() {
                        let _ = work_tx.send((n, lines, block));
                    }
                    return Ok(());
                }
                // Whole lines go; the rest waits for the next read.
                let Some(cut) = block.iter().rposition(|b| *b == b'\n') else {
                    carry = block;
                    continue;
                };
                carry = block.split_off(cut + 1);
                let count = block.iter().filter(|b| **b == b'\n').count();
                if work_tx.send((n, lines, block)).is_err() {
                    return Ok(());
                }
                (n, lines) = (n + 1, lines + count);
            }
        });
        // In order: blocks that come early wait for those before them.
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0usize;
        let mut failed = None;
        for (n, items) in done_rx.iter() {
            waiting.insert(n, items);
            while let Some(items) = waiting.remove(&next) {
                next += 1;
                if failed.is_some() {
                    continue;
                }
                match items {
                    Ok(items) => {
                        for i in items {
                            if let Err(e) = fold(i) {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
        }
        let read = reader.join().map_err(|_| "the reader stopped".to_owned())?;
        match failed {
            Some(e) => Err(e),
            None => read,
        }
    })
}

/// Verifies an exported audit log offline: every entry's hash and link,
/// the sequence (no gap, insertion or reordering), the Merkle tree, and each
/// checkpoint (in the file, and `extra`, one kept from before) signed by
/// one of `keys` with the root of the entries up to its size. The first
/// bad sequence number when something does not check out. Entries are
/// parsed and hashed on every core; the chain and the tree are followed in
/// order.
pub fn verify_export(
    input: impl std::io::Read + Send,
    keys: &[NoteVerifier],
    extra: Option<&str>,
) -> std::result::Result<ExportReport, String> {
    let mut r = ExportReport::default();
    let mut tree = MemoryTree::default();
    let mut prev = [0u8; 32];
    let mut origin_line = None;
    let mut tenant = 0u64;
    let mut notes: Vec<(Option<i64>, String)> = Vec::new();
    let mut ended = None;
    // The opened parts of the next sealed entry.
    let mut opened: Option<(i64, Vec<Commitment>)> = None;
    fn fail(r: &mut ExportReport, seq: i64, why: &str) {
        if r.first_bad_seq.is_none() {
            (r.first_bad_seq, r.reason) = (Some(seq), Some(why.to_owned()));
        }
    }
    parallel_items(input, |i| {
        match i {
            Item::Header { tenant: t, origin } => {
                tenant = tenant_digest(&t);
                r.tenant = t;
                origin_line = Some(origin);
            }
            Item::Pruned { size, hash, frontier } => {
                let hashes: Option<Vec<Hash>> = frontier.iter().map(|h| hex32(h).map(Hash)).collect();
                match (r.entries, hex32(&hash), hashes, u64::try_from(size)) {
                    (0, Some(h), Some(hashes), Ok(n)) if n > 0 && hashes.len() == frontier_len(n) => {
                        r.pruned = size;
                        prev = h;
                        tree = MemoryTree::pruned(n, &hashes);
                    }
                    _ => {
                        let at = r.pruned + r.entries + 1;
                        fail(&mut r, at, "its pruned prefix is not well formed")
                    }
                }
            }
            Item::Personal { seq, parts } => {
                if opened.is_some() {
                    let at = r.pruned + r.entries + 1;
                    fail(&mut r, at, "personal data without its entry");
                }
                opened = Some((seq, parts));
            }
            Item::Entry(e) => {
                let expected = r.pruned + r.entries + 1;
                r.entries += 1;
                let parts = opened.take();
                if r.first_bad_seq.is_some() {
                    return Ok(());
                }
                // Each opened part: the entry's own subject and commitment.
                let (mut found, mut forged) = (0, false);
                if let Some((seq, parts)) = parts {
                    forged = seq != e.seq || parts.len() > e.parts.len();
                    for (s, c) in parts {
                        if c.is_some() && e.parts.iter().any(|p| p.s == s && hex32(&p.c) == c) {
                            found += 1;
                        } else {
                            forged = true;
                        }
                    }
                }
                if e.tenant != tenant {
                    fail(&mut r, expected, "an entry of another tenant");
                } else if e.seq != expected {
                    let why = if e.seq > expected { "an entry is missing (a gap)" } else { "an entry is out of order or repeated" };
                    fail(&mut r, expected, why);
                } else if e.prev != Some(prev) {
                    fail(&mut r, expected, "its previous hash is not the entry before it");
                } else if !e.hashes_right {
                    fail(&mut r, expected, "the entry does not match its hash");
                } else if forged {
                    fail(&mut r, expected, "its personal data does not match what the entry commits to");
                } else {
                    r.personal += found;
                    r.erased += e.parts.len() as i64 - found;
                    tree.push((expected - 1) as u64, e.leaf);
                    prev = e.hash.unwrap_or_default();
                }
            }
            Item::Checkpoint(note) => {
                let size = note.lines().nth(1).and_then(|l| l.parse().ok());
                notes.push((size, note));
            }
            Item::End(entries) => ended = Some(entries),
        }
        Ok(())
    })?;
    if let Some(k) = extra {
        notes.push((None, k.to_owned()));
    }
    let last = r.pruned + r.entries;
    let built = r.first_bad_seq.map_or(last, |s| s - 1);
    if r.first_bad_seq.is_none() {
        r.head = (last > 0).then(|| hex::encode(prev));
        if ended != Some(r.entries) {
            let next = last + 1;
            fail(&mut r, next, "the file ends before its end line: entries may be missing");
        }
    }
    // Each checkpoint: signed by a known key, for this log, over the root of
    // the entries up to its size.
    notes.sort_by_key(|(s, _)| s.unwrap_or(i64::MAX));
    let mut proven_upto = r.pruned;
    for (_, note) in &notes {
        let text = match verify_note(note, keys) {
            Ok(t) => t,
            Err(why) => {
                fail(&mut r, proven_upto + 1, &format!("a checkpoint is not genuine: {why}"));
                continue;
            }
        };
        let (o, size, root) = parse_checkpoint(text)?;
        let size = size as i64;
        if origin_line.as_deref() != Some(o.as_str()) {
            fail(&mut r, proven_upto + 1, &format!("a checkpoint is of another log ({o})"));
            continue;
        }
        if size > last {
            fail(&mut r, last + 1, &format!("a checkpoint signs {size} entries; the file holds up to {last}"));
            continue;
        }
        // A checkpoint within a pruned prefix (one kept from before) proves
        // nothing this file holds.
        if size < r.pruned || size > built {
            continue;
        }
        let ours = tlog_tiles::tree_hash(size as u64, &tree).map_err(|e| e.to_string())?;
        if ours != root {
            let why = format!("the entries from {} to {size} are not those the checkpoint of {size} signed", proven_upto + 1);
            fail(&mut r, proven_upto + 1, &why);
            break;
        }
        r.checkpoints += 1;
        proven_upto = size;
    }
    if r.pruned > 0 && r.checkpoints == 0 {
        let at = r.pruned + 1;
        fail(&mut r, at, "no checkpoint signs the pruned prefix");
    }
    r.proven = proven_upto;
    r.ok = r.first_bad_seq.is_none();
    Ok(r)
}

/// The checkpoint job: a round now and then, until the app closes.
pub async fn run(app: App) {
    // A round at once (a tree behind its chain catches up at start), then
    // one a second.
    if let Err(e) = app.checkpoint_round().await {
        tracing::warn!(error = %e, "audit checkpoint round failed");
    }
    app.every(Duration::from_secs(1), "audit checkpoints", || app.checkpoint_round()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_verify_with_cloudflares_signed_note_and_not_when_changed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let root = Hash([9; 32]);
        let text =
            String::from_utf8(tlog_tiles::Checkpoint::new(&origin("org_x"), 42, root, "").expect("checkpoint").to_bytes()).expect("utf-8");
        let note = sign_note(&text, KEY_NAME, &key);
        let vk = vkey(KEY_NAME, &key.verifying_key());

        // An implementation no one here wrote agrees.
        let theirs = signed_note::StandardVerifier::new(&vk).expect("their parser takes our key");
        let list = signed_note::VerifierList::new(vec![Box::new(theirs)]);
        let parsed = signed_note::Note::from_bytes(note.as_bytes()).expect("their parser takes our note");
        parsed.verify(&list).expect("their verifier accepts our signature");

        let ours = NoteVerifier::parse(&vk).expect("our key");
        assert_eq!(verify_note(&note, std::slice::from_ref(&ours)), Ok(text.as_str()));
        assert_eq!(parse_checkpoint(&text).map(|(o, s, h)| (o, s, h == root)), Ok(("ironcase/audit/org_x".to_owned(), 42, true)));
        let forged = note.replace("\n42\n", "\n43\n");
        assert_eq!(verify_note(&forged, std::slice::from_ref(&ours)), Err("the signature does not verify".to_owned()));
        let other = NoteVerifier::parse(&vkey(KEY_NAME, &SigningKey::from_bytes(&[8; 32]).verifying_key())).expect("key");
        assert_eq!(verify_note(&note, &[other]), Err("no signature by a known key".to_owned()));
    }
}
