//! The staging area: files being received (a download from Meta, an upload from the tenant) are
//! written here first, hashed and counted as they arrive, and only then handed to the storage.
//! A file given up on is removed; nothing half-written ever reaches the storage.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// How many leading bytes are kept to tell what the file really is.
const HEAD_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("could not write the file to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Where files are staged: a directory on the same disk as the local storage, so handing a file
/// over is a rename.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Starts a new file that may grow to at most `limit` bytes.
    pub async fn create(&self, limit: u64) -> Result<StagingWriter, StagingError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|source| io_error(&self.dir, source))?;
        let path = self
            .dir
            .join(format!("{}.part", crate::ids::random_token(16)));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|source| io_error(&path, source))?;
        Ok(StagingWriter {
            file: Some(file),
            staged: StagedFile {
                path,
                size: 0,
                sha256: String::new(),
                head: Vec::with_capacity(HEAD_BYTES),
            },
            hasher: Sha256::new(),
            limit,
        })
    }
}

/// A file being written: each chunk is hashed, counted against the limit and appended.
pub struct StagingWriter {
    file: Option<tokio::fs::File>,
    staged: StagedFile,
    hasher: Sha256,
    limit: u64,
}

impl StagingWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StagingError> {
        let size = self.staged.size + chunk.len() as u64;
        if size > self.limit {
            return Err(StagingError::TooLarge { limit: self.limit });
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(chunk)
            .await
            .map_err(|source| io_error(&self.staged.path, source))?;
        self.hasher.update(chunk);
        let room = HEAD_BYTES.saturating_sub(self.staged.head.len());
        self.staged
            .head
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.staged.size = size;
        Ok(())
    }

    /// Flushes the file to disk and hands back what was written.
    pub async fn finish(mut self) -> Result<StagedFile, StagingError> {
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|source| io_error(&self.staged.path, source))?;
            file.sync_all()
                .await
                .map_err(|source| io_error(&self.staged.path, source))?;
        }
        let mut staged = std::mem::replace(
            &mut self.staged,
            StagedFile {
                path: PathBuf::new(),
                size: 0,
                sha256: String::new(),
                head: Vec::new(),
            },
        );
        staged.sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok(staged)
    }
}

impl Drop for StagingWriter {
    fn drop(&mut self) {
        // Given up on before `finish`: the partial file goes.
        if !self.staged.path.as_os_str().is_empty() {
            remove_quietly(&self.staged.path);
        }
    }
}

/// A complete staged file, hashed. Dropping it removes the file; the storage takes it over.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The first bytes, to tell what the file is.
    pub head: Vec<u8>,
}

impl StagedFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives up the file's path: the caller now owns the file on disk.
    pub fn into_path(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            remove_quietly(&self.path);
        }
    }
}

fn remove_quietly(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %error, "could not remove a staged file");
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StagingError {
    StagingError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_staged_file_is_hashed_and_counted_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path().join("staging"));
        let mut writer = staging.create(10).await.unwrap();
        writer.write(b"hello ").await.unwrap();
        writer.write(b"you").await.unwrap();
        let staged = writer.finish().await.unwrap();
        assert_eq!(staged.size, 9);
        assert_eq!(
            staged.sha256,
            hex::encode(Sha256::digest(b"hello you")),
            "the hash is of every byte written"
        );
        assert_eq!(staged.head, b"hello you");
        let path = staged.path().to_owned();
        assert!(path.exists());
        drop(staged);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_file_over_its_limit_is_refused_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path());
        let mut writer = staging.create(4).await.unwrap();
        writer.write(b"1234").await.unwrap();
        assert!(matches!(
            writer.write(b"5").await,
            Err(StagingError::TooLarge { limit: 4 })
        ));
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
