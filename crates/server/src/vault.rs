//! The vault: AES-256-GCM for every stored secret (access tokens, app secrets, verify tokens).
//!
//! A sealed secret is `version (1) | key id (8) | nonce (12) | ciphertext and tag`. The key id lets
//! keys rotate: new secrets use the primary key, old ones still open under the key they name. The
//! row's identity (table, column, row id) is the associated data, so a ciphertext copied into
//! another row or column does not open.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const KEY_FILE: &str = "master.key";

/// Where a secret lives; bound into its ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct SecretSlot<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: &'a str,
}

impl<'a> SecretSlot<'a> {
    pub fn new(table: &'static str, column: &'static str, row_id: &'a str) -> Self {
        Self {
            table,
            column,
            row_id,
        }
    }

    fn associated_data(&self) -> Vec<u8> {
        format!("wagate:v1:{}:{}:{}", self.table, self.column, self.row_id).into_bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("WAGATE_MASTER_KEY must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("the key file {path} could not be used: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("a stored secret is damaged or not in the vault's format")]
    Malformed,
    #[error(
        "a stored secret was sealed with a key this process does not have (key id {0}); set WAGATE_PREVIOUS_MASTER_KEYS"
    )]
    UnknownKey(String),
    #[error("a stored secret does not open with its key and place (tampered with, or moved)")]
    Rejected,
}

struct VaultKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl VaultKey {
    fn derive(master: &[u8; 32]) -> Self {
        // The master key is never used directly: the cipher key and its public id are both derived
        // from it, so the id reveals nothing about the key.
        let hkdf = Hkdf::<Sha256>::new(Some(b"wagate vault"), master);
        let mut cipher_key = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; KEY_ID_LEN];
        // Both lengths are far below HKDF-SHA256's limit of 8160 bytes.
        let _ = hkdf.expand(b"aes-256-gcm v1", cipher_key.as_mut_slice());
        let _ = hkdf.expand(b"key id v1", &mut id);
        let cipher = Aes256Gcm::new(cipher_key.as_slice().into());
        Self { id, cipher }
    }
}

/// Seals and opens stored secrets. Cheap to share behind an `Arc`.
pub struct Vault {
    primary: VaultKey,
    previous: Vec<VaultKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("primary_key_id", &hex::encode(self.primary.id))
            .field("previous_keys", &self.previous.len())
            .finish()
    }
}

impl Vault {
    pub fn new(primary: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            primary: VaultKey::derive(primary),
            previous: previous.iter().map(VaultKey::derive).collect(),
        }
    }

    /// The vault for these settings: the key from `WAGATE_MASTER_KEY`, or else the key file in the
    /// data dir, generated (mode 0600) the first time with a warning.
    pub fn load(
        master_key: Option<&SecretString>,
        previous_keys: Option<&SecretString>,
        data_dir: &Path,
    ) -> Result<Self, VaultError> {
        let primary = match master_key {
            Some(key) => decode_key(key.expose_secret())?,
            None => load_or_create_key_file(data_dir)?,
        };
        let mut previous = Vec::new();
        if let Some(list) = previous_keys {
            for part in list.expose_secret().split(',').map(str::trim) {
                if !part.is_empty() {
                    previous.push(*decode_key(part)?);
                }
            }
        }
        Ok(Self::new(&primary, &previous))
    }

    /// Encrypts `plaintext` for `slot` under the primary key with a fresh random nonce.
    pub fn seal(&self, slot: SecretSlot<'_>, plaintext: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = slot.associated_data();
        // Encryption with a valid key and nonce only fails for inputs over 64 GiB.
        let sealed = self
            .primary
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.primary.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a secret sealed for exactly this `slot`.
    pub fn open(&self, slot: SecretSlot<'_>, sealed: &[u8]) -> Result<SecretString, VaultError> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT_VERSION {
            return Err(VaultError::Malformed);
        }
        let key_id = &sealed[1..1 + KEY_ID_LEN];
        let key = std::iter::once(&self.primary)
            .chain(self.previous.iter())
            .find(|k| k.id == key_id)
            .ok_or_else(|| VaultError::UnknownKey(hex::encode(key_id)))?;
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        let aad = slot.associated_data();
        let plain = key
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Rejected)?;
        let text = std::str::from_utf8(&plain).map_err(|_| VaultError::Malformed)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Whether a sealed secret was written under an older key and should be sealed again.
    pub fn is_sealed_with_old_key(&self, sealed: &[u8]) -> bool {
        sealed.len() > KEY_ID_LEN && sealed[1..1 + KEY_ID_LEN] != self.primary.id
    }

    /// The id of the key new secrets are sealed with.
    pub fn primary_key_id(&self) -> KeyId {
        KeyId(self.primary.id)
    }

    /// Whether this vault holds the key with this id (primary or previous).
    pub fn has_key(&self, id: KeyId) -> bool {
        std::iter::once(&self.primary)
            .chain(self.previous.iter())
            .any(|k| k.id == id.0)
    }

    /// The secret sealed again for the same `slot` under the primary key, or `None` when it
    /// already is. A secret under another key must open first, so this fails exactly as `open`.
    pub fn reseal(
        &self,
        slot: SecretSlot<'_>,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        match KeyId::of(sealed) {
            Some(id) if id == self.primary_key_id() => Ok(None),
            _ => {
                let plain = self.open(slot, sealed)?;
                Ok(Some(self.seal(slot, plain.expose_secret())))
            }
        }
    }
}

/// The public id of a master key (derived from it, revealing nothing of it): what a sealed secret
/// names, and what `wagate keys status` counts by. Shown as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The key id a sealed secret names; `None` when the bytes are not in the vault's format.
    pub fn of(sealed: &[u8]) -> Option<Self> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT_VERSION {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
        Some(Self(id))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Where the generated master key lives when `WAGATE_MASTER_KEY` is unset.
pub fn key_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn decode_key(text: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| VaultError::BadMasterKey)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(VaultError::BadMasterKey);
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn load_or_create_key_file(data_dir: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let path = key_file_path(data_dir);
    let key_file_error = |reason: String| VaultError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    match fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            return decode_key(&text)
                .map_err(|_| key_file_error("it does not hold base64 of exactly 32 bytes".into()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_error(e.to_string())),
    }
    fs::create_dir_all(data_dir).map_err(|e| key_file_error(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut_slice());
    let encoded = Zeroizing::new(STANDARD.encode(key.as_slice()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(|e| key_file_error(e.to_string()))?;
            tracing::warn!(
                path = %path.display(),
                "WAGATE_MASTER_KEY is unset: generated a master key file; back it up, stored credentials cannot be read without it"
            );
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(&path).map_err(|e| key_file_error(e.to_string()))?;
            decode_key(&text).map_err(|_| key_file_error("it is not a valid key".into()))
        }
        Err(e) => Err(key_file_error(e.to_string())),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file is readable by other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vault() -> Vault {
        Vault::new(&[7u8; 32], &[])
    }

    #[test]
    fn a_sealed_secret_opens_in_its_own_slot() {
        let v = vault();
        let slot = SecretSlot::new("connections", "access_token", "row-1");
        let sealed = v.seal(slot, "EAAG-token");
        assert_eq!(v.open(slot, &sealed).unwrap().expose_secret(), "EAAG-token");
        assert!(!sealed.windows(10).any(|w| w == b"EAAG-token"));
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let v = vault();
        let slot = SecretSlot::new("connections", "access_token", "row-1");
        assert_ne!(v.seal(slot, "x"), v.seal(slot, "x"));
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_does_not_open() {
        let v = vault();
        let sealed = v.seal(SecretSlot::new("connections", "access_token", "row-1"), "s");
        assert!(matches!(
            v.open(
                SecretSlot::new("connections", "access_token", "row-2"),
                &sealed
            ),
            Err(VaultError::Rejected)
        ));
        assert!(matches!(
            v.open(
                SecretSlot::new("connections", "app_secret", "row-1"),
                &sealed
            ),
            Err(VaultError::Rejected)
        ));
    }

    #[test]
    fn a_flipped_bit_is_rejected() {
        let v = vault();
        let slot = SecretSlot::new("t", "c", "r");
        let mut sealed = v.seal(slot, "secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(v.open(slot, &sealed), Err(VaultError::Rejected)));
    }

    #[test]
    fn keys_rotate_old_secrets_still_open_and_are_flagged() {
        let old = Vault::new(&[1u8; 32], &[]);
        let slot = SecretSlot::new("t", "c", "r");
        let sealed = old.seal(slot, "secret");
        let rotated = Vault::new(&[2u8; 32], &[[1u8; 32]]);
        assert_eq!(
            rotated.open(slot, &sealed).unwrap().expose_secret(),
            "secret"
        );
        assert!(rotated.is_sealed_with_old_key(&sealed));
        assert!(!rotated.is_sealed_with_old_key(&rotated.seal(slot, "secret")));
        let without_old = Vault::new(&[2u8; 32], &[]);
        assert!(matches!(
            without_old.open(slot, &sealed),
            Err(VaultError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_secret_under_a_previous_key_reseals_under_the_primary_and_still_opens_in_its_slot() {
        let old = Vault::new(&[1u8; 32], &[]);
        let slot = SecretSlot::new("connections", "app_secret", "row-1");
        let sealed = old.seal(slot, "app-secret");
        let rotated = Vault::new(&[2u8; 32], &[[1u8; 32]]);
        let resealed = rotated
            .reseal(slot, &sealed)
            .unwrap()
            .expect("under an old key");
        assert_eq!(KeyId::of(&resealed), Some(rotated.primary_key_id()));
        assert_eq!(KeyId::of(&sealed), Some(old.primary_key_id()));
        let only_new = Vault::new(&[2u8; 32], &[]);
        assert_eq!(
            only_new.open(slot, &resealed).unwrap().expose_secret(),
            "app-secret"
        );
        assert!(matches!(
            only_new.open(
                SecretSlot::new("connections", "app_secret", "row-2"),
                &resealed
            ),
            Err(VaultError::Rejected)
        ));
        // Already under the primary key: nothing to do.
        assert!(rotated.reseal(slot, &resealed).unwrap().is_none());
    }

    #[test]
    fn resealing_a_secret_under_a_key_the_vault_lacks_names_the_key_and_what_to_set() {
        let old = Vault::new(&[1u8; 32], &[]);
        let slot = SecretSlot::new("t", "c", "r");
        let sealed = old.seal(slot, "s");
        let without_old = Vault::new(&[2u8; 32], &[]);
        let error = without_old.reseal(slot, &sealed).unwrap_err();
        assert!(matches!(error, VaultError::UnknownKey(_)));
        let message = error.to_string();
        assert!(
            message.contains(&old.primary_key_id().to_string()),
            "{message}"
        );
        assert!(message.contains("WAGATE_PREVIOUS_MASTER_KEYS"), "{message}");
        assert!(!without_old.has_key(old.primary_key_id()));
        assert!(Vault::new(&[2u8; 32], &[[1u8; 32]]).has_key(old.primary_key_id()));
    }

    #[test]
    fn key_ids_are_sixteen_hex_digits_and_only_of_well_formed_secrets() {
        let v = vault();
        let id = v.primary_key_id().to_string();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            KeyId::of(&v.seal(SecretSlot::new("t", "c", "r"), "")),
            Some(v.primary_key_id())
        );
        assert_eq!(KeyId::of(b"not sealed"), None);
        assert_ne!(
            Vault::new(&[8u8; 32], &[]).primary_key_id(),
            v.primary_key_id()
        );
    }

    #[test]
    fn a_missing_key_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key_file(dir.path()).unwrap();
        let second = load_or_create_key_file(dir.path()).unwrap();
        assert_eq!(*first, *second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_master_key_that_is_not_32_bytes_is_refused() {
        let short = SecretString::from(STANDARD.encode([0u8; 16]));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Vault::load(Some(&short), None, dir.path()),
            Err(VaultError::BadMasterKey)
        ));
    }

    proptest! {
        #[test]
        fn any_secret_round_trips(secret in ".{0,200}", row in "[a-z0-9-]{1,40}") {
            let v = vault();
            let slot = SecretSlot::new("connections", "app_secret", &row);
            let sealed = v.seal(slot, &secret);
            let opened = v.open(slot, &sealed).unwrap();
            prop_assert_eq!(opened.expose_secret(), secret.as_str());
        }

        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let v = vault();
            prop_assert!(v.open(SecretSlot::new("t", "c", "r"), &bytes).is_err());
        }
    }
}
