//! The database: one `Store` over SQLite (embedded, the default) or PostgreSQL, with the same SQL
//! for both wherever the two agree. It knows tables and rows, nothing of HTTP.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one connection and queue in
//! this process instead of spinning on `SQLITE_BUSY`; reads use their own pool. The inbox of raw
//! webhooks is a second SQLite file with its own writer, so storing a webhook never waits for the
//! processor's writes. On PostgreSQL all of these are one pool and one database.

pub mod assistant;
pub mod connections;
pub mod contact_imports;
pub mod contacts;
pub mod conversations;
pub mod inbox;
pub mod jobs;
pub mod media;
pub mod messages;
mod migrations;
pub mod secrets;
pub mod sequences;
pub mod sessions;
pub mod statuses;
pub mod templates;
pub mod tenants;
pub mod usage;
pub mod webhook_endpoints;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor};

use crate::config::DatabaseUrl;

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, Any>;
/// A connection or a transaction; store functions that take one can run inside a caller's transaction.
pub type Conn = sqlx::AnyConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored row is not what this version expects: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this is a unique-constraint violation (someone else has that key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether the database could not be reached at all (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

/// How big the pools may grow.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    pub read: u32,
    pub write_postgres: u32,
}

impl Default for PoolSizes {
    fn default() -> Self {
        Self {
            read: 8,
            write_postgres: 16,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    inbox: InboxPools,
}

/// Where the inbox lives: its own SQLite file, or the main database.
#[derive(Clone)]
struct InboxPools {
    read: AnyPool,
    write: AnyPool,
    /// Its own database: a row is marked done after the main commit, in a second transaction.
    separate: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens the database (creating an SQLite file and its directory when needed). Does not migrate.
    pub async fn connect(url: &DatabaseUrl, sizes: PoolSizes) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        match url {
            DatabaseUrl::Sqlite(raw) => {
                let url = sqlite_url_with_create(raw)?;
                let options = AnyConnectOptions::from_str(&url)?;
                let write = sqlite_pool_options(1).connect_with(options.clone()).await?;
                let read = sqlite_pool_options(sizes.read)
                    .connect_with(options)
                    .await?;
                let inbox_options = AnyConnectOptions::from_str(&inbox_url(&url))?;
                let inbox = InboxPools {
                    write: sqlite_pool_options(1)
                        .connect_with(inbox_options.clone())
                        .await?,
                    read: sqlite_pool_options(2).connect_with(inbox_options).await?,
                    separate: true,
                };
                Ok(Self {
                    backend: Backend::Sqlite,
                    read,
                    write,
                    inbox,
                })
            }
            DatabaseUrl::Postgres(raw) => {
                let options = AnyConnectOptions::from_str(raw)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(sizes.write_postgres.max(2))
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Self {
                    backend: Backend::Postgres,
                    read: pool.clone(),
                    inbox: InboxPools {
                        read: pool.clone(),
                        write: pool.clone(),
                        separate: false,
                    },
                    write: pool,
                })
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::run(self).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Starts a write transaction whose commit is on disk before it returns: for facts that
    /// exist nowhere else (webhook bodies, API writes, jobs). On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so a transaction that reads before it writes cannot deadlock
    /// against another process.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => {
                self.write
                    .begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
                    .await?
            }
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(tx)
    }

    /// Starts a write transaction of the given durability.
    pub async fn begin_with(&self, durability: Durability) -> Result<Tx, StoreError> {
        match durability {
            Durability::Full => self.begin().await,
            Durability::Relaxed => self.begin_derived().await,
        }
    }

    /// Starts a write transaction for work derived from something already durable (applying
    /// stored webhooks). Its commit may be lost in a power failure, in which case the inbox rows it
    /// marked done are simply applied again, harmlessly; in exchange it skips the disk flush that
    /// would otherwise hold up the webhook commits queued behind it.
    pub async fn begin_derived(&self) -> Result<Tx, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self
                .write
                .begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
                .await?),
            Backend::Postgres => {
                let mut tx = self.write.begin().await?;
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        sqlx::query("SELECT 1").execute(&self.inbox.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
        self.inbox.read.close().await;
        self.inbox.write.close().await;
    }
}

fn sqlite_pool_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL makes every commit durable on disk
                // before the webhook is answered (group commit keeps that affordable).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                // 32 MiB of page cache per connection: the hot indexes stay in memory.
                conn.execute("PRAGMA cache_size = -32768").await?;
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                Ok(())
            })
        })
}

/// Makes sure the file can be created (`mode=rwc`) and its directory exists.
fn sqlite_url_with_create(raw: &str) -> Result<String, StoreError> {
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.is_empty()
        && path != ":memory:"
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => raw.to_owned(),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

/// How hard a write insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the call returns: facts that exist nowhere else.
    Full,
    /// May be lost in a power failure: bookkeeping that is redone if lost (job leases, a row
    /// applied again). Skips the flush, so it does not hold up the writes queued behind it.
    Relaxed,
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Runs a single write statement in its own transaction of the chosen durability. On SQLite the
/// durability is a setting of the one writer connection, so no write may leave it to chance.
pub(crate) trait WriteQuery {
    async fn run_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError>;
    async fn fetch_all_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError>;
    async fn fetch_optional_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<Option<sqlx::any::AnyRow>, StoreError>;
}

impl WriteQuery for AnyQuery<'_> {
    async fn run_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        let mut tx = store.begin_with(durability).await?;
        let result = self.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(result)
    }

    async fn fetch_all_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut tx = store.begin_with(durability).await?;
        let rows = self.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn fetch_optional_on(
        self,
        store: &Store,
        durability: Durability,
    ) -> Result<Option<sqlx::any::AnyRow>, StoreError> {
        let mut tx = store.begin_with(durability).await?;
        let row = self.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// The inbox file beside an SQLite database: `x/wagate.db` -> `x/wagate-inbox.db`.
fn inbox_url(main: &str) -> String {
    let (path, query) = match main.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (main, None),
    };
    let inbox = match path.strip_suffix(".db") {
        Some(stem) => format!("{stem}-inbox.db"),
        None => format!("{path}-inbox"),
    };
    match query {
        Some(q) => format!("{inbox}?{q}"),
        None => inbox,
    }
}

/// Reads a column, turning a type mismatch into a `StoreError` that names the column.
pub(crate) fn col<'r, T>(row: &'r sqlx::any::AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    row.try_get::<T, _>(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// What unit tests of the store's users start from: a migrated SQLite store with one tenant.
#[cfg(test)]
pub(crate) mod testing {
    use super::connections::{ConnectionRow, STATUS_CONNECTED};
    use super::tenants::NewTenant;
    use super::{PoolSizes, Store};
    use crate::config::DatabaseUrl;

    /// The tenant [`store_with_tenant`] creates.
    pub const TENANT: &str = "t1";

    /// A migrated SQLite store in `dir` with tenant [`TENANT`].
    pub async fn store_with_tenant(dir: &std::path::Path) -> Store {
        let url = DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("wagate.db").display()));
        let store = Store::connect(&url, PoolSizes::default()).await.unwrap();
        store.migrate().await.unwrap();
        store
            .create_tenant(&NewTenant {
                tenant_id: TENANT,
                name: "Acme",
                user_id: "u1",
                email: "owner@acme.test",
                password_hash: "not a real hash",
                api_key_id: "k1",
                api_key_hash: "not a real hash",
                api_key_prefix: "wg_x",
                now: 1,
            })
            .await
            .unwrap();
        store
    }

    /// A connected number of [`TENANT`] without credentials, to insert.
    pub fn connection_row(id: &str, phone_number_id: &str) -> ConnectionRow {
        ConnectionRow {
            id: id.to_owned(),
            tenant_id: TENANT.into(),
            phone_number_id: phone_number_id.to_owned(),
            waba_id: None,
            display_phone_number: phone_number_id.to_owned(),
            verified_name: "Acme".into(),
            quality_rating: None,
            connection_key: format!("key-{id}"),
            access_token: None,
            app_secret: None,
            verify_token: None,
            status: STATUS_CONNECTED.into(),
            status_reason: None,
            auto_reply: false,
            throughput_per_second: 80,
            templates_synced_at: None,
            created_at: 1,
            updated_at: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_file_sits_beside_the_database() {
        assert_eq!(
            inbox_url("sqlite://data/wagate.db?mode=rwc"),
            "sqlite://data/wagate-inbox.db?mode=rwc"
        );
        assert_eq!(inbox_url("sqlite://data/main"), "sqlite://data/main-inbox");
    }

    #[test]
    fn sqlite_urls_gain_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/wagate.db", dir.path().display());
        let with = sqlite_url_with_create(&url).unwrap();
        assert!(with.ends_with("?mode=rwc"), "{with}");
        assert!(dir.path().join("sub").is_dir());
        assert_eq!(
            sqlite_url_with_create("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
    }
}
