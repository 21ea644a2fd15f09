//! Blob storage for evidence files: one interface, a local directory by
//! default, S3-compatible object storage when configured. What goes in is
//! already encrypted (see `ironcase_app::crypto`); the store only keeps bytes
//! under a key such as `org_…/evd_…`.
//!
//! A blob appears under its key only when complete. Locally, writes go to a
//! temporary file that is synced and renamed on commit; on S3, to a multipart
//! upload that is completed on commit. Either is discarded when the writer is
//! dropped without committing (an interrupted upload leaves nothing behind).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
pub struct BlobStore {
    backend: Backend,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Local { root } => f.debug_struct("BlobStore::Local").field("root", root).finish(),
            Backend::S3 { bucket, prefix, .. } => f.debug_struct("BlobStore::S3").field("bucket", bucket).field("prefix", prefix).finish(),
        }
    }
}

#[derive(Clone)]
enum Backend {
    Local { root: PathBuf },
    S3 { store: Arc<dyn ObjectStore>, bucket: String, prefix: String },
}

/// Where S3-compatible storage is, beyond what the standard `AWS_*`
/// environment says (credentials come only from there, or from the host's
/// role).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// For S3-compatible services (MinIO, Ceph, R2…): their URL.
    pub endpoint: Option<String>,
    /// Allow a plain-HTTP endpoint (a service on a private network).
    pub allow_http: bool,
}

/// S3 parts are buffered to this size (S3's minimum, except for the last).
const S3_PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once per upload.
const S3_PARTS_IN_FLIGHT: usize = 2;

fn s3_err(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, "no such blob"),
        other => io::Error::other(other.to_string()),
    }
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

    /// S3-compatible storage at `url` (`s3://bucket` or `s3://bucket/prefix`).
    pub fn s3(url: &str, options: &S3Options) -> io::Result<BlobStore> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the evidence store must be `local` or s3://bucket[/prefix]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty() || (!prefix.is_empty() && checked(prefix).is_err()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the S3 bucket or prefix is not valid"));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = &options.endpoint {
            b = b.with_endpoint(e);
        }
        if options.allow_http {
            b = b.with_allow_http(true);
        }
        let store = b.build().map_err(s3_err)?;
        Ok(BlobStore { backend: Backend::S3 { store: Arc::new(store), bucket: bucket.to_owned(), prefix: prefix.to_owned() } })
    }

    /// Where a blob lives on disk, for the local backend (operators and tests).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local { root } => checked(key).ok().map(|k| root.join(k)),
            Backend::S3 { .. } => None,
        }
    }

    fn object_path(prefix: &str, key: &str) -> object_store::path::Path {
        if prefix.is_empty() {
            object_store::path::Path::from(key)
        } else {
            object_store::path::Path::from(format!("{prefix}/{key}"))
        }
    }

    /// Starts a new blob under `key`.
    pub async fn create(&self, key: &str) -> io::Result<BlobWriter> {
        let key = checked(key)?;
        match &self.backend {
            Backend::Local { root } => {
                let tmp = root.join("tmp").join(uuid::Uuid::now_v7().simple().to_string());
                let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).await?;
                Ok(BlobWriter { inner: Writer::Local { file: Some(file), tmp: Some(tmp), dest: root.join(key) } })
            }
            Backend::S3 { store, prefix, .. } => {
                let upload = store.put_multipart(&Self::object_path(prefix, key)).await.map_err(s3_err)?;
                Ok(BlobWriter { inner: Writer::S3 { upload: Some(WriteMultipart::new_with_chunk_size(upload, S3_PART)) } })
            }
        }
    }

    pub async fn open(&self, key: &str) -> io::Result<BlobReader> {
        let key = checked(key)?;
        match &self.backend {
            Backend::Local { root } => Ok(BlobReader { inner: Reader::Local(tokio::fs::File::open(root.join(key)).await?) }),
            Backend::S3 { store, prefix, .. } => {
                let got = store.get(&Self::object_path(prefix, key)).await.map_err(s3_err)?;
                Ok(BlobReader { inner: Reader::S3 { stream: got.into_stream(), pending: bytes::Bytes::new(), at: 0 } })
            }
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
            Backend::S3 { store, prefix, .. } => match store.delete(&Self::object_path(prefix, key)).await {
                Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
                Err(e) => Err(s3_err(e)),
            },
        }
    }
}

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves nothing.
pub struct BlobWriter {
    inner: Writer,
}

enum Writer {
    Local { file: Option<tokio::fs::File>, tmp: Option<PathBuf>, dest: PathBuf },
    S3 { upload: Option<WriteMultipart> },
}

fn committed() -> io::Error {
    io::Error::other("blob already committed")
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Writer::Local { file: Some(f), .. } => f.write_all(bytes).await,
            Writer::S3 { upload: Some(u) } => {
                u.wait_for_capacity(S3_PARTS_IN_FLIGHT).await.map_err(s3_err)?;
                u.write(bytes);
                Ok(())
            }
            _ => Err(committed()),
        }
    }

    /// Makes the blob durable and visible under its key.
    pub async fn commit(mut self) -> io::Result<()> {
        match &mut self.inner {
            Writer::Local { file, tmp, dest } => {
                let (Some(mut f), Some(t)) = (file.take(), tmp.clone()) else { return Err(committed()) };
                f.flush().await?;
                f.sync_all().await?;
                drop(f);
                if let Some(dir) = dest.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::rename(&t, &*dest).await?;
                *tmp = None;
                if let Some(dir) = dest.parent() {
                    // The rename is durable once the directory is.
                    if let Ok(d) = tokio::fs::File::open(dir).await {
                        let _ = d.sync_all().await;
                    }
                }
                Ok(())
            }
            Writer::S3 { upload } => {
                let u = upload.take().ok_or_else(committed)?;
                u.finish().await.map_err(s3_err)?;
                Ok(())
            }
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        match &mut self.inner {
            Writer::Local { file, tmp, .. } => {
                if let Some(t) = tmp.take() {
                    drop(file.take());
                    let _ = std::fs::remove_file(t);
                }
            }
            Writer::S3 { upload } => {
                // An unfinished multipart upload is never visible; aborting
                // it frees the parts already stored.
                if let (Some(u), Ok(rt)) = (upload.take(), tokio::runtime::Handle::try_current()) {
                    rt.spawn(async move {
                        if let Err(e) = u.abort().await {
                            tracing::warn!(error = %e, "could not abort an interrupted evidence upload");
                        }
                    });
                }
            }
        }
    }
}

pub struct BlobReader {
    inner: Reader,
}

enum Reader {
    Local(tokio::fs::File),
    S3 { stream: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>, pending: bytes::Bytes, at: usize },
}

impl BlobReader {
    /// Fills `buf` as far as the blob allows; returns how many bytes were read
    /// (fewer than `buf.len()` only at the end).
    pub async fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let m = match &mut self.inner {
                Reader::Local(f) => f.read(&mut buf[n..]).await?,
                Reader::S3 { stream, pending, at } => {
                    if *at == pending.len() {
                        match stream.next().await {
                            Some(chunk) => {
                                *pending = chunk.map_err(s3_err)?;
                                *at = 0;
                                continue;
                            }
                            None => 0,
                        }
                    } else {
                        let m = (pending.len() - *at).min(buf.len() - n);
                        buf[n..n + m].copy_from_slice(&pending[*at..*at + m]);
                        *at += m;
                        m
                    }
                }
            };
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
