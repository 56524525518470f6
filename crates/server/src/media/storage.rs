//! Where stored media bytes live. [`MediaStorage`] is the seam: the local directory under the data
//! dir is the default, and an S3-compatible store can take its place behind the same trait.
//!
//! Files are addressed by the SHA-256 of their content, so a file that arrives many times (the
//! same brochure sent by a hundred customers) is kept once; keys never change once written.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use futures::StreamExt;

use super::staging::StagedFile;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the stored file {key} is missing")]
    Missing { key: String },
    #[error("`{0}` is not a storage key")]
    BadKey(String),
    #[error("media storage failed at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A stored file opened for reading.
pub struct StoredObject {
    pub length: u64,
    pub body: ByteStream,
}

/// Keeps media bytes by content hash.
pub trait MediaStorage: Send + Sync + 'static {
    /// Takes over a staged file whose SHA-256 (hex) is `sha256`, and answers its key. A file
    /// with that content already stored is kept as it is and the staged copy dropped.
    fn put(&self, staged: StagedFile) -> BoxFuture<'_, Result<String, StorageError>>;

    /// Opens a stored file for reading.
    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoredObject, StorageError>>;

    /// Where new files are staged before [`MediaStorage::put`] (on the same disk, for the local store).
    fn staging_dir(&self) -> PathBuf;
}

/// Media in a directory: `<root>/sha256/ab/cd/abcd…`.
#[derive(Debug, Clone)]
pub struct LocalDirStorage {
    root: PathBuf,
}

impl LocalDirStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        // Keys are written by `put` only; anything else could walk out of the root.
        let parts: Vec<&str> = key.split('/').collect();
        let well_formed = parts.len() == 4
            && parts[0] == "sha256"
            && parts[3].len() == 64
            && parts[3]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && parts[1] == &parts[3][..2]
            && parts[2] == &parts[3][2..4];
        if !well_formed {
            return Err(StorageError::BadKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    async fn put_file(&self, staged: StagedFile) -> Result<String, StorageError> {
        let hash = staged.sha256.to_ascii_lowercase();
        if hash.len() != 64 {
            return Err(StorageError::BadKey(hash));
        }
        let key = format!("sha256/{}/{}/{hash}", &hash[..2], &hash[2..4]);
        let target = self.path_of(&key)?;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            // Same content already kept: the staged copy is dropped (and removed) here.
            return Ok(key);
        }
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|source| io_error(&dir, source))?;
        let from = staged.into_path();
        if let Err(source) = tokio::fs::rename(&from, &target).await {
            let _ = tokio::fs::remove_file(&from).await;
            return Err(io_error(&target, source));
        }
        // The rename is durable only once the directory entry is on disk.
        if let Ok(handle) = tokio::fs::File::open(&dir).await {
            let _ = handle.sync_all().await;
        }
        Ok(key)
    }

    async fn open_file(&self, key: &str) -> Result<StoredObject, StorageError> {
        let path = self.path_of(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::Missing {
                    key: key.to_owned(),
                });
            }
            Err(source) => return Err(io_error(&path, source)),
        };
        let length = file
            .metadata()
            .await
            .map_err(|source| io_error(&path, source))?
            .len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).boxed();
        Ok(StoredObject { length, body })
    }
}

impl MediaStorage for LocalDirStorage {
    fn put(&self, staged: StagedFile) -> BoxFuture<'_, Result<String, StorageError>> {
        Box::pin(self.put_file(staged))
    }

    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoredObject, StorageError>> {
        Box::pin(self.open_file(key))
    }

    fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::staging::Staging;

    async fn staged(storage: &LocalDirStorage, bytes: &[u8]) -> StagedFile {
        let mut writer = Staging::new(storage.staging_dir())
            .create(1 << 20)
            .await
            .unwrap();
        writer.write(bytes).await.unwrap();
        writer.finish().await.unwrap()
    }

    async fn read_all(object: StoredObject) -> Vec<u8> {
        let mut body = object.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn the_same_content_is_kept_once_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDirStorage::new(dir.path());
        let first = storage
            .put(staged(&storage, b"brochure").await)
            .await
            .unwrap();
        let second = storage
            .put(staged(&storage, b"brochure").await)
            .await
            .unwrap();
        assert_eq!(first, second);
        assert!(first.starts_with("sha256/"));
        let object = storage.open(&first).await.unwrap();
        assert_eq!(object.length, 8);
        assert_eq!(read_all(object).await, b"brochure");
        // Nothing is left in staging: both staged copies were taken over or removed.
        assert_eq!(std::fs::read_dir(storage.staging_dir()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn keys_that_could_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDirStorage::new(dir.path());
        for bad in ["../etc/passwd", "sha256/../../x", "sha256/ab/cd/ef", ""] {
            assert!(matches!(
                storage.open(bad).await,
                Err(StorageError::BadKey(_))
            ));
        }
        let missing = format!("sha256/ab/cd/abcd{}", "0".repeat(60));
        assert!(matches!(
            storage.open(&missing).await,
            Err(StorageError::Missing { .. })
        ));
    }
}
