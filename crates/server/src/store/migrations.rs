//! Schema migrations, embedded in the binary: one list for SQLite and one for PostgreSQL, with the
//! same file names and versions so the two schemas move together.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Backend, Store, StoreError};

/// `(file name, SQLite text, PostgreSQL text)`, in order. The version is the number the name starts with.
const MIGRATIONS: &[(&str, &str, &str)] = &[
    (
        "0001_foundation.sql",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        "0002_outbound.sql",
        include_str!("../../migrations/sqlite/0002_outbound.sql"),
        include_str!("../../migrations/postgres/0002_outbound.sql"),
    ),
    (
        "0003_dashboard.sql",
        include_str!("../../migrations/sqlite/0003_dashboard.sql"),
        include_str!("../../migrations/postgres/0003_dashboard.sql"),
    ),
    (
        "0004_templates_media.sql",
        include_str!("../../migrations/sqlite/0004_templates_media.sql"),
        include_str!("../../migrations/postgres/0004_templates_media.sql"),
    ),
    (
        "0005_assistant.sql",
        include_str!("../../migrations/sqlite/0005_assistant.sql"),
        include_str!("../../migrations/postgres/0005_assistant.sql"),
    ),
    (
        "0006_webhook_endpoints.sql",
        include_str!("../../migrations/sqlite/0006_webhook_endpoints.sql"),
        include_str!("../../migrations/postgres/0006_webhook_endpoints.sql"),
    ),
    (
        "0007_sequences.sql",
        include_str!("../../migrations/sqlite/0007_sequences.sql"),
        include_str!("../../migrations/postgres/0007_sequences.sql"),
    ),
    (
        "0008_contacts.sql",
        include_str!("../../migrations/sqlite/0008_contacts.sql"),
        include_str!("../../migrations/postgres/0008_contacts.sql"),
    ),
    (
        "0009_scheduled_sends.sql",
        include_str!("../../migrations/sqlite/0009_scheduled_sends.sql"),
        include_str!("../../migrations/postgres/0009_scheduled_sends.sql"),
    ),
];

/// The SQLite inbox file's own schema, `(file name, text)`.
const SQLITE_INBOX_MIGRATIONS: &[(&str, &str)] = &[(
    "0001_inbox.sql",
    include_str!("../../migrations/sqlite-inbox/0001_inbox.sql"),
)];

fn migrator(backend: Backend) -> Migrator {
    let files = MIGRATIONS.iter().map(|(name, sqlite, postgres)| {
        let sql = match backend {
            Backend::Sqlite => *sqlite,
            Backend::Postgres => *postgres,
        };
        (*name, sql)
    });
    migrator_of(files)
}

fn migrator_of<'a>(files: impl Iterator<Item = (&'a str, &'static str)>) -> Migrator {
    let migrations = files
        .map(|(name, sql)| {
            let (version, description) = version_and_description(name);
            Migration::new(
                version,
                Cow::Owned(description),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn version_and_description(file_name: &str) -> (i64, String) {
    let stem = file_name.trim_end_matches(".sql");
    let (number, rest) = stem.split_once('_').unwrap_or((stem, ""));
    (number.parse().unwrap_or(0), rest.replace('_', " "))
}

pub(super) async fn run(store: &Store) -> Result<(), StoreError> {
    migrator(store.backend).run(&store.write).await?;
    if store.inbox.separate {
        migrator_of(SQLITE_INBOX_MIGRATIONS.iter().copied())
            .run(&store.inbox.write)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_databases_have_the_same_migration_files_and_all_are_embedded() {
        let sqlite = names_in("sqlite");
        let postgres = names_in("postgres");
        assert_eq!(sqlite, postgres);
        let embedded: Vec<String> = MIGRATIONS.iter().map(|(n, _, _)| n.to_string()).collect();
        assert_eq!(sqlite, embedded);
        let inbox: Vec<String> = SQLITE_INBOX_MIGRATIONS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(names_in("sqlite-inbox"), inbox);
    }

    #[test]
    fn versions_increase() {
        let versions: Vec<i64> = MIGRATIONS
            .iter()
            .map(|(n, _, _)| version_and_description(n).0)
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert!(versions.iter().all(|v| *v > 0));
    }
}
