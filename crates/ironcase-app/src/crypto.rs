//! Keys and secrets: the master key, AES-256-GCM sealing with bound associated
//! data, random tokens, hashing and constant-time comparison.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
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
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| AppError::Internal("bad key length".into()))?;
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

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != SEAL_V1 {
            return Err(AppError::Internal("sealed value has an unknown format".into()));
        }
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| AppError::Internal("bad key length".into()))?;
        cipher
            .decrypt(Nonce::from_slice(&sealed[1..13]), Payload { msg: &sealed[13..], aad: aad.as_bytes() })
            .map_err(|_| AppError::Internal("cannot decrypt: wrong master key or altered data".into()))
    }
}

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
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
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

    #[test]
    fn key_formats() {
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&"ab".repeat(31)).is_err());
    }
}
