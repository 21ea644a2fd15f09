//! The personal data in audit entries, sealed per data subject.
//!
//! An entry's source address, user agent and e-mail addresses are kept out
//! of the bytes its chain hashes: each data subject's share is sealed under
//! a key of their own (itself sealed under the master key), and the chain
//! hashes only a salted commitment to it. Erasure destroys the subject's key
//! (crypto-shredding): the data can no longer be read by anyone, and every
//! chain, tree and checkpoint still verifies. The store keeps what this
//! module gives it ([`ironcase_store::audit::Personal`]).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ironcase_store::audit::{self as store, EntryRow, SealedPart};
use ironcase_store::Conn;

use crate::crypto::{random_bytes, DataKey, MasterKey};
use crate::Result;

/// Bytes of the salt sealed with a part's fields.
const SALT: usize = 32;

fn key_aad(tenant: &str, subject: &str) -> String {
    format!("audit-subject-key:{tenant}:{subject}")
}

fn part_aad(tenant: &str, subject: &str) -> String {
    format!("audit-personal:{tenant}:{subject}")
}

/// Most unsealed subject keys kept in memory.
const CACHED_KEYS: usize = 4096;

/// The application's keys for audit entries' personal data.
pub struct PersonalKeys {
    master: MasterKey,
    /// HMAC-SHA-256 keyed (once) with a key derived from the master key for
    /// tags: cloned per tag.
    tagger: hmac::Hmac<sha2::Sha256>,
    /// Subject keys unsealed lately, by whose they are and their sealed
    /// text: a key erased is never asked for again (its sealed text is gone
    /// from the store), so nothing erased can be opened through this.
    unsealed: std::sync::Mutex<HashMap<String, DataKey>>,
}

impl std::fmt::Debug for PersonalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalKeys(<redacted>)")
    }
}

impl PersonalKeys {
    pub fn new(master: MasterKey) -> PersonalKeys {
        use hmac::Mac;
        let key = master.mac_hex("audit-tag", b"");
        let tagger = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
        PersonalKeys { master, tagger, unsealed: Default::default() }
    }

    fn key(&self, tenant: &str, subject: &str, sealed: &str) -> Result<DataKey> {
        let cached = format!("{tenant}\n{subject}\n{sealed}");
        if let Some(k) = self.unsealed.lock().ok().and_then(|m| m.get(&cached).cloned()) {
            return Ok(k);
        }
        let bytes = STANDARD.decode(sealed).map_err(|_| crate::AppError::Internal("a subject key is not base64".into()))?;
        let key = DataKey::unwrap(&self.master, &bytes, &key_aad(tenant, subject))?;
        if let Ok(mut m) = self.unsealed.lock() {
            if m.len() >= CACHED_KEYS {
                m.clear();
            }
            m.insert(cached, key.clone());
        }
        Ok(key)
    }

    /// The keyed hash the store finds sealed entries of a source address by.
    pub fn ip_tag(&self, tenant: &str, ip: &str) -> String {
        store::Personal::tag(self, tenant, &format!("ip:{ip}"))
    }

    /// The subject an e-mail address's share of an entry is sealed under.
    pub fn email_subject(&self, tenant: &str, email: &str) -> String {
        format!("email:{}", store::Personal::tag(self, tenant, &format!("email:{}", email.to_lowercase())))
    }

    /// Opens the parts of `rows` whose subjects still have their keys: per
    /// row, per part, the salt and the fields (JSON text) when readable.
    pub fn open(&self, c: &Conn, tenant: &str, rows: &[EntryRow]) -> Result<Vec<Vec<Option<Opened>>>> {
        let mut subjects: Vec<&str> = rows.iter().flat_map(|r| r.personal.iter().map(|p| p.part.s.as_str())).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let sealed = if subjects.is_empty() { HashMap::new() } else { store::subject_keys(c, tenant, &subjects)? };
        let mut keys: HashMap<&str, Option<DataKey>> = HashMap::new();
        for s in &subjects {
            // A key that cannot be unsealed is as good as erased.
            keys.insert(s, sealed.get(*s).and_then(|k| self.key(tenant, s, k).ok()));
        }
        Ok(rows.iter().map(|r| r.personal.iter().map(|p| opened(&keys, tenant, p)).collect()).collect())
    }

    /// Fills in the personal data of `rows` for display, where it can still
    /// be read; marks them `erased` where it cannot. (Their `bytes` no
    /// longer hold after this.)
    pub fn reveal(&self, c: &Conn, tenant: &str, rows: &mut [EntryRow]) -> Result<()> {
        let opened = self.open(c, tenant, rows)?;
        for (r, parts) in rows.iter_mut().zip(opened) {
            if parts.is_empty() {
                continue;
            }
            let mut details: serde_json::Value = serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null);
            for part in parts {
                let Some(o) = part else {
                    r.erased = true;
                    continue;
                };
                let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(&o.fields) else { continue };
                for (k, v) in fields {
                    match (k.as_str(), v) {
                        ("source_ip", serde_json::Value::String(ip)) => r.source_ip = Some(ip),
                        ("user_agent", serde_json::Value::String(ua)) => r.user_agent = Some(ua),
                        (_, v) => {
                            if let serde_json::Value::Object(m) = &mut details {
                                m.insert(k, v);
                            }
                        }
                    }
                }
            }
            r.details = details.to_string();
        }
        Ok(())
    }
}

/// A part's data, opened: the salt and fields its commitment binds.
#[derive(Debug, Clone)]
pub struct Opened {
    pub salt: Vec<u8>,
    pub fields: String,
}

fn opened(keys: &HashMap<&str, Option<DataKey>>, tenant: &str, p: &SealedPart) -> Option<Opened> {
    let key = keys.get(p.part.s.as_str())?.as_ref()?;
    let bytes = STANDARD.decode(&p.x).ok()?;
    let plain = key.open(&bytes, &part_aad(tenant, &p.part.s)).ok()?;
    if plain.len() < SALT {
        return None;
    }
    let (salt, fields) = plain.split_at(SALT);
    let fields = String::from_utf8(fields.to_vec()).ok()?;
    // Sealed data moved from another entry of the same subject would open:
    // only what this entry committed to is shown.
    (ironcase_domain::audit::commit(salt, &fields) == p.part.c).then(|| Opened { salt: salt.to_vec(), fields })
}

impl store::Personal for PersonalKeys {
    fn new_key(&self, tenant: &str, subject: &str) -> std::result::Result<String, String> {
        let (_, sealed) = DataKey::generate(&self.master, &key_aad(tenant, subject)).map_err(|e| e.to_string())?;
        Ok(STANDARD.encode(sealed))
    }

    fn seal(&self, tenant: &str, subject: &str, key: &str, fields: &str) -> std::result::Result<(String, String), String> {
        let key = self.key(tenant, subject, key).map_err(|e| e.to_string())?;
        let salt = random_bytes::<SALT>();
        let mut plain = Vec::with_capacity(SALT + fields.len());
        plain.extend_from_slice(&salt);
        plain.extend_from_slice(fields.as_bytes());
        let sealed = key.seal(&plain, &part_aad(tenant, subject)).map_err(|e| e.to_string())?;
        Ok((ironcase_domain::audit::commit(&salt, fields), STANDARD.encode(sealed)))
    }

    /// 128 bits of HMAC-SHA-256 over the tenant and the value.
    fn tag(&self, tenant: &str, value: &str) -> String {
        use hmac::Mac;
        let mut m = self.tagger.clone();
        m.update(tenant.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..16])
    }
}
