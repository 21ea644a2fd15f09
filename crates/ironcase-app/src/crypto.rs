//! Keys and secrets: the master key, AES-256-GCM sealing with bound associated
//! data, random tokens, hashing and constant-time comparison.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AppError, Result};

/// The key that wraps every other key. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Version byte at the head of every sealed value, so that a later format or
/// key version can be told apart.
const SEAL_V1: u8 = 1;

impl MasterKey {
    /// Parses a key given as 64 hex digits or standard base64 of 32 bytes.
    pub fn parse(s: &str) -> Result<MasterKey> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) { hex::decode(s).ok() } else { STANDARD.decode(s).ok() };
        match bytes {
            Some(b) if b.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&b);
                Ok(MasterKey(k))
            }
            _ => Err(AppError::BadRequest("the master key must be 32 bytes, as 64 hex digits or base64".into())),
        }
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key when missing.
    pub fn load_or_create_file(path: &Path) -> std::io::Result<MasterKey> {
        match std::fs::read_to_string(path) {
            Ok(s) => MasterKey::parse(&s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                write_secret_file(path, STANDARD.encode(k).as_bytes())?;
                Ok(MasterKey(k))
            }
            Err(e) => Err(e),
        }
    }

    /// Encrypts `plain`, bound to `aad` (what the value is and whose).
    pub fn seal(&self, plain: &[u8], aad: &str) -> Result<Vec<u8>> {
        seal_with(&self.cipher()?, plain, aad)
    }

    fn cipher(&self) -> Result<Aes256Gcm> {
        Aes256Gcm::new_from_slice(&self.0).map_err(|_| AppError::Internal("bad key length".into()))
    }

    /// A MAC of `msg` under a key derived from this one for `purpose` (hex).
    pub fn mac_hex(&self, purpose: &str, msg: &[u8]) -> String {
        let key = hmac_sha256_hex(&self.0, purpose.as_bytes());
        hmac_sha256_hex(key.as_bytes(), msg)
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
        open_with(&self.cipher()?, sealed, aad)
    }
}

/// A sealed value: the format's version byte, a random nonce, the ciphertext.
fn seal_with(cipher: &Aes256Gcm, plain: &[u8], aad: &str) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: aad.as_bytes() })
        .map_err(|_| AppError::Internal("encryption failed".into()))?;
    let mut out = Vec::with_capacity(1 + 12 + ct.len());
    out.push(SEAL_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(cipher: &Aes256Gcm, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
    if sealed.len() < 1 + 12 + 16 || sealed[0] != SEAL_V1 {
        return Err(AppError::Internal("sealed value has an unknown format".into()));
    }
    cipher
        .decrypt(Nonce::from_slice(&sealed[1..13]), Payload { msg: &sealed[13..], aad: aad.as_bytes() })
        .map_err(|_| AppError::Internal("cannot decrypt: wrong key or altered data".into()))
}

/// An organisation's data key: encrypts its evidence files. Generated per
/// organisation, stored only sealed under the master key. Never printed.
#[derive(Clone)]
pub struct DataKey(Aes256Gcm);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh key, and its bytes sealed under `master` for storage.
    pub fn generate(master: &MasterKey, aad: &str) -> Result<(DataKey, Vec<u8>)> {
        let raw = random_bytes::<32>();
        let sealed = master.seal(&raw, aad)?;
        Ok((DataKey::from_raw(&raw)?, sealed))
    }

    /// Unseals a stored key.
    pub fn unwrap(master: &MasterKey, sealed: &[u8], aad: &str) -> Result<DataKey> {
        DataKey::from_raw(&master.open(sealed, aad)?)
    }

    /// Encrypts a small value, bound to `aad`.
    pub fn seal(&self, plain: &[u8], aad: &str) -> Result<Vec<u8>> {
        seal_with(&self.0, plain, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
        open_with(&self.0, sealed, aad)
    }

    fn from_raw(raw: &[u8]) -> Result<DataKey> {
        Aes256Gcm::new_from_slice(raw).map(DataKey).map_err(|_| AppError::Internal("bad data key length".into()))
    }
}

/// Files are encrypted in chunks of this many bytes, each its own AES-GCM
/// message, so that memory stays flat whatever the size of the file.
pub const CHUNK: usize = 256 * 1024;
const TAG: usize = 16;
/// An encrypted chunk as stored.
pub const FRAME: usize = CHUNK + TAG;
const MAGIC: &[u8; 8] = b"ICBLOB1\0";
/// The header: magic, then the blob's random 7-byte nonce prefix.
pub const HEADER: usize = MAGIC.len() + 7;

/// The nonce of chunk `counter`: the blob's prefix, the counter, and whether
/// it is the last chunk (the STREAM construction of Hoang, Reyhanitabar,
/// Rogaway and Vizár): chunks cannot be reordered, dropped or cut off at the
/// end without the decryption failing.
fn chunk_nonce(prefix: &[u8; 7], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts a stream of bytes chunk by chunk.
pub struct Sealer {
    key: DataKey,
    prefix: [u8; 7],
    aad: Vec<u8>,
    counter: u32,
    pending: Vec<u8>,
}

impl Sealer {
    /// Starts a blob bound to `aad` (what it is and whose); writes the header to `out`.
    pub fn new(key: &DataKey, aad: &str, out: &mut Vec<u8>) -> Sealer {
        let prefix = random_bytes::<7>();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&prefix);
        Sealer { key: key.clone(), prefix, aad: aad.as_bytes().to_vec(), counter: 0, pending: Vec::with_capacity(2 * CHUNK) }
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<()> {
        let nonce = chunk_nonce(&self.prefix, self.counter, last);
        self.counter = self.counter.checked_add(1).ok_or_else(|| AppError::Internal("file too large to encrypt".into()))?;
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .0
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &self.aad, &mut out[start..])
            .map_err(|_| AppError::Internal("encryption failed".into()))?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Takes more plaintext; appends to `out` whatever chunks it completes.
    /// A full chunk is sealed only once more data follows it, so that the
    /// last chunk is always known when it is sealed.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.pending.extend_from_slice(data);
        let mut used = 0;
        while self.pending.len() - used > CHUNK {
            let chunk = std::mem::take(&mut self.pending);
            self.seal(&chunk[used..used + CHUNK], false, out)?;
            self.pending = chunk;
            used += CHUNK;
        }
        self.pending.drain(..used);
        Ok(())
    }

    /// Seals what is left as the last chunk (possibly empty).
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        let rest = std::mem::take(&mut self.pending);
        self.seal(&rest, true, out)
    }
}

/// Decrypts a blob written by [`Sealer`], one stored frame at a time.
pub struct Opener {
    key: DataKey,
    prefix: [u8; 7],
    aad: Vec<u8>,
    counter: u32,
}

impl Opener {
    /// Checks the header; `None` when it is not one of ours.
    pub fn new(key: &DataKey, aad: &str, header: &[u8]) -> Option<Opener> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return None;
        }
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        Some(Opener { key: key.clone(), prefix, aad: aad.as_bytes().to_vec(), counter: 0 })
    }

    /// Decrypts one frame in place (it becomes the plaintext). Fails when the
    /// frame was altered, moved, or is not where the stream says it is.
    pub fn open(&mut self, frame: &mut Vec<u8>, last: bool) -> Result<(), IntegrityError> {
        if frame.len() < TAG || frame.len() > FRAME {
            return Err(IntegrityError);
        }
        let nonce = chunk_nonce(&self.prefix, self.counter, last);
        self.counter = self.counter.checked_add(1).ok_or(IntegrityError)?;
        let split = frame.len() - TAG;
        let tag = aes_gcm::Tag::clone_from_slice(&frame[split..]);
        frame.truncate(split);
        self.key.0.decrypt_in_place_detached(Nonce::from_slice(&nonce), &self.aad, frame, &tag).map_err(|_| IntegrityError)
    }
}

/// Stored bytes that do not decrypt: altered, truncated, or not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityError;

/// Writes a file only its owner can read.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

pub fn sha256_hex(s: &str) -> String {
    sha256_hex_bytes(s.as_bytes())
}

pub fn sha256_hex_bytes(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// HMAC-SHA256 of `msg` under `key`, hex.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return String::new() };
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let k = MasterKey::parse(&"11".repeat(32)).expect("hex key");
        let s = k.seal(b"secret", "signing_key:a").expect("seal");
        assert_eq!(k.open(&s, "signing_key:a").expect("open"), b"secret");
        assert!(k.open(&s, "signing_key:b").is_err(), "aad must bind");
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(k.open(&t, "signing_key:a").is_err(), "tampering must be caught");
        let other = MasterKey::parse(&"22".repeat(32)).expect("hex key");
        assert!(other.open(&s, "signing_key:a").is_err());
        assert!(!format!("{k:?}").contains("11"));
    }

    /// Seals `data` pushed in pieces of `step`, returns the stored bytes.
    fn seal_all(key: &DataKey, data: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = Sealer::new(key, "evidence:x", &mut out);
        for piece in data.chunks(step.max(1)) {
            s.push(piece, &mut out).expect("push");
        }
        s.finish(&mut out).expect("finish");
        out
    }

    /// Opens stored bytes frame by frame, as the download does.
    fn open_all(key: &DataKey, stored: &[u8], aad: &str) -> Result<Vec<u8>, IntegrityError> {
        let mut o = Opener::new(key, aad, stored.get(..HEADER).ok_or(IntegrityError)?).ok_or(IntegrityError)?;
        let frames: Vec<&[u8]> = stored[HEADER..].chunks(FRAME).collect();
        let mut plain = Vec::new();
        if frames.is_empty() {
            return Err(IntegrityError);
        }
        for (i, f) in frames.iter().enumerate() {
            let mut f = f.to_vec();
            o.open(&mut f, i + 1 == frames.len())?;
            plain.extend_from_slice(&f);
        }
        Ok(plain)
    }

    #[test]
    fn chunked_round_trip_at_every_boundary() {
        let master = MasterKey::parse(&"11".repeat(32)).expect("hex key");
        let (key, sealed) = DataKey::generate(&master, "data_key:a").expect("generate");
        let key2 = DataKey::unwrap(&master, &sealed, "data_key:a").expect("unwrap");
        assert!(DataKey::unwrap(&master, &sealed, "data_key:b").is_err());
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for step in [1000, CHUNK, 3 * CHUNK] {
                let stored = seal_all(&key, &data, step);
                assert_eq!(stored.len(), HEADER + len + TAG * (len.saturating_sub(1) / CHUNK + 1), "len {len}");
                assert_eq!(open_all(&key2, &stored, "evidence:x").expect("open"), data, "len {len} step {step}");
            }
        }
    }

    #[test]
    fn tampering_truncation_and_rebinding_are_caught() {
        let master = MasterKey::parse(&"11".repeat(32)).expect("hex key");
        let (key, _) = DataKey::generate(&master, "k").expect("generate");
        let data = vec![7u8; 2 * CHUNK + 5];
        let stored = seal_all(&key, &data, 4096);
        let mut flipped = stored.clone();
        flipped[HEADER + CHUNK + 3] ^= 0x40;
        assert_eq!(open_all(&key, &flipped, "evidence:x"), Err(IntegrityError));
        // Dropping the last frame leaves a stream whose new last frame was not sealed as last.
        assert_eq!(open_all(&key, &stored[..HEADER + 2 * FRAME], "evidence:x"), Err(IntegrityError));
        assert_eq!(open_all(&key, &stored, "evidence:y"), Err(IntegrityError), "bound to its evidence");
        let (other, _) = DataKey::generate(&master, "k").expect("generate");
        assert_eq!(open_all(&other, &stored, "evidence:x"), Err(IntegrityError));
        assert!(!format!("{key:?}").contains('7'));
    }

    #[test]
    fn key_formats() {
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&"ab".repeat(31)).is_err());
    }
}
