//! Blob storage for evidence files: one interface, a local directory by
//! default. What goes in is already encrypted (see `ironcase_app::crypto`);
//! the store only keeps bytes under a key such as `org_…/evd_…`.
//!
//! A blob appears under its key only when complete: writes go to a temporary
//! file that is synced and renamed on commit, and removed when the writer is
//! dropped without committing (an interrupted upload leaves nothing behind).

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local { root: PathBuf },
}

/// Keys are ours (`org_…/evd_…`); anything else is refused rather than
/// turned into a path.
fn checked(key: &str) -> io::Result<&str> {
    let ok = !key.is_empty()
        && key.split('/').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    if ok {
        Ok(key)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "bad blob key"))
    }
}

impl BlobStore {
    /// A local directory (created 0700 when missing). Leftovers of uploads
    /// interrupted by a crash are removed.
    pub fn local(root: &Path) -> io::Result<BlobStore> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        }
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(BlobStore { backend: Backend::Local { root: root.to_owned() } })
    }

    /// Where a blob lives on disk, for the local backend (operators and tests).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local { root } => checked(key).ok().map(|k| root.join(k)),
        }
    }

    /// Starts a new blob under `key`.
    pub async fn create(&self, key: &str) -> io::Result<BlobWriter> {
        let key = checked(key)?;
        match &self.backend {
            Backend::Local { root } => {
                let tmp = root.join("tmp").join(uuid::Uuid::now_v7().simple().to_string());
                let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).await?;
                Ok(BlobWriter { file: Some(file), tmp: Some(tmp), dest: root.join(key) })
            }
        }
    }

    pub async fn open(&self, key: &str) -> io::Result<BlobReader> {
        let key = checked(key)?;
        match &self.backend {
            Backend::Local { root } => Ok(BlobReader { file: tokio::fs::File::open(root.join(key)).await? }),
        }
    }

    /// Removes a blob; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let key = checked(key)?;
        match &self.backend {
            Backend::Local { root } => match tokio::fs::remove_file(root.join(key)).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves nothing.
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    tmp: Option<PathBuf>,
    dest: PathBuf,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes).await,
            None => Err(io::Error::other("blob already committed")),
        }
    }

    /// Makes the blob durable and visible under its key.
    pub async fn commit(mut self) -> io::Result<()> {
        let (Some(mut file), Some(tmp)) = (self.file.take(), self.tmp.clone()) else {
            return Err(io::Error::other("blob already committed"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if let Some(dir) = self.dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(&tmp, &self.dest).await?;
        self.tmp = None;
        if let Some(dir) = self.dest.parent() {
            // The rename is durable once the directory is.
            if let Ok(d) = tokio::fs::File::open(dir).await {
                let _ = d.sync_all().await;
            }
        }
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            drop(self.file.take());
            let _ = std::fs::remove_file(tmp);
        }
    }
}

pub struct BlobReader {
    file: tokio::fs::File,
}

impl BlobReader {
    /// Fills `buf` as far as the blob allows; returns how many bytes were read
    /// (fewer than `buf.len()` only at the end).
    pub async fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let m = self.file.read(&mut buf[n..]).await?;
            if m == 0 {
                break;
            }
            n += m;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_publishes_and_drop_discards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::local(dir.path()).expect("local");
        let mut w = store.create("org_a/evd_1").await.expect("create");
        w.write(b"hello").await.expect("write");
        w.commit().await.expect("commit");
        let mut r = store.open("org_a/evd_1").await.expect("open");
        let mut buf = [0u8; 16];
        assert_eq!(r.read_full(&mut buf).await.expect("read"), 5);
        assert_eq!(&buf[..5], b"hello");

        let mut w = store.create("org_a/evd_2").await.expect("create");
        w.write(b"partial").await.expect("write");
        drop(w);
        assert!(store.open("org_a/evd_2").await.is_err());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count(), 0, "a dropped writer leaves no file");

        assert!(store.create("../escape").await.is_err());
        assert!(store.open("org_a/../../etc/passwd").await.is_err());
        store.delete("org_a/evd_1").await.expect("delete");
        store.delete("org_a/evd_1").await.expect("deleting twice is fine");
        assert!(store.open("org_a/evd_1").await.is_err());
    }
}
