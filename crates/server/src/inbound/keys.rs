//! The webhook hot path's memory of connection keys: key -> connection and opened app secret, for
//! a few seconds, so a burst from Meta costs one database read and one decryption per connection
//! instead of one per request.
//!
//! Entries are dropped at once in this process when a connection's credentials change or it is
//! disconnected; other processes see the change when their entry expires. In that window a
//! webhook is at worst refused with 401 (Meta retries it) or stored for a connection that is gone
//! (the processor does not apply it), so nothing is lost and nothing forged gets through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::store::{Store, StoreError};
use crate::vault::{SecretSlot, Vault};

/// A connection as the webhook route needs it.
#[derive(Clone)]
pub struct ResolvedKey {
    pub connection_id: String,
    pub app_secret: SecretString,
}

pub struct ConnectionKeys {
    entries: Mutex<HashMap<String, (ResolvedKey, Instant)>>,
    ttl: Duration,
    capacity: usize,
}

impl ConnectionKeys {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The live connection behind a key, or `None` when no live connection has it.
    pub async fn resolve(
        &self,
        store: &Store,
        vault: &Vault,
        key: &str,
    ) -> Result<Option<ResolvedKey>, StoreError> {
        if let Some(found) = self.cached(key) {
            return Ok(Some(found));
        }
        let Some(connection) = store.connection_by_key(key).await? else {
            return Ok(None);
        };
        let Some(sealed) = connection.app_secret.as_deref() else {
            return Ok(None);
        };
        let app_secret = match vault.open(
            SecretSlot::new("connections", "app_secret", &connection.id),
            sealed,
        ) {
            Ok(secret) => secret,
            Err(error) => {
                tracing::error!(connection_id = %connection.id, error = %error, "app secret cannot be opened");
                return Ok(None);
            }
        };
        let resolved = ResolvedKey {
            connection_id: connection.id,
            app_secret,
        };
        self.remember(key, resolved.clone());
        Ok(Some(resolved))
    }

    /// Forgets a connection (its credentials changed or it was disconnected).
    pub fn forget_connection(&self, connection_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (resolved, _)| resolved.connection_id != connection_id);
        }
    }

    fn cached(&self, key: &str) -> Option<ResolvedKey> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(resolved, _)| resolved.clone())
    }

    fn remember(&self, key: &str, resolved: ResolvedKey) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(key.to_owned(), (resolved, Instant::now()));
        }
    }
}
