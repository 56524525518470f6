//! Every column that holds a sealed secret, read in pages and rewritten only if unchanged: what
//! `wagate keys` uses to count secrets by key and to seal them again under a new master key.

use super::{Durability, Store, StoreError, col};

/// A column of sealed secrets, and the column whose value is the row id in the secret's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// The primary key, which is also the `row_id` the vault binds into the ciphertext.
    pub id_column: &'static str,
}

impl std::fmt::Display for SealedColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// Every sealed column in the schema. A sealed column left out of this list would stay under the
/// old key after rotation, so a test checks it against the migrations.
pub const SEALED_COLUMNS: [SealedColumn; 5] = [
    SealedColumn {
        table: "connections",
        column: "access_token",
        id_column: "id",
    },
    SealedColumn {
        table: "connections",
        column: "app_secret",
        id_column: "id",
    },
    SealedColumn {
        table: "connections",
        column: "verify_token",
        id_column: "id",
    },
    SealedColumn {
        table: "webhook_endpoints",
        column: "secret",
        id_column: "id",
    },
    SealedColumn {
        table: "assistant_settings",
        column: "provider_api_key",
        id_column: "connection_id",
    },
];

/// One stored secret, still sealed.
pub struct SealedValue {
    pub row_id: String,
    pub sealed: Vec<u8>,
}

// Ciphertext only, but a Debug of it has no use and would fill a log line.
impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("row_id", &self.row_id)
            .finish_non_exhaustive()
    }
}

/// A compare-and-swap of one sealed value: written only if the row still holds `expected`.
pub struct SealedSwap {
    pub row_id: String,
    pub expected: Vec<u8>,
    pub replacement: Vec<u8>,
}

impl Store {
    /// Up to `limit` non-empty values of `column` in row-id order, starting after `after` (`""`
    /// for the first page): pages by key, so rows written meanwhile never shift the next page.
    #[tracing::instrument(skip_all, fields(column = %column))]
    pub async fn sealed_values(
        &self,
        column: SealedColumn,
        after: &str,
        limit: i64,
    ) -> Result<Vec<SealedValue>, StoreError> {
        let SealedColumn {
            table,
            column,
            id_column,
        } = column;
        let sql = format!(
            "SELECT {id_column} AS row_id, {column} AS sealed FROM {table}
             WHERE {column} IS NOT NULL AND {id_column} > $1
             ORDER BY {id_column} LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedValue {
                    row_id: col(row, "row_id")?,
                    sealed: col(row, "sealed")?,
                })
            })
            .collect()
    }

    /// The value of `column` in one row; `None` when the row is gone or holds no secret.
    #[tracing::instrument(skip_all, fields(column = %column))]
    pub async fn sealed_value(
        &self,
        column: SealedColumn,
        row_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let SealedColumn {
            table,
            column,
            id_column,
        } = column;
        let sql = format!("SELECT {column} AS sealed FROM {table} WHERE {id_column} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(row_id)
            .fetch_optional(self.reader())
            .await?;
        match row {
            Some(row) => col(&row, "sealed"),
            None => Ok(None),
        }
    }

    /// Applies each swap whose row still holds its `expected` value, all in one durable
    /// transaction; answers, per swap, whether it was applied. A row changed since it was read
    /// (a new secret saved by a running server) is left as it is.
    #[tracing::instrument(skip_all, fields(column = %column, swaps = swaps.len()))]
    pub async fn swap_sealed_values(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> Result<Vec<bool>, StoreError> {
        let SealedColumn {
            table,
            column,
            id_column,
        } = column;
        let sql =
            format!("UPDATE {table} SET {column} = $1 WHERE {id_column} = $2 AND {column} = $3");
        let mut tx = self.begin_with(Durability::Full).await?;
        let mut applied = Vec::with_capacity(swaps.len());
        for swap in swaps {
            let result = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&swap.replacement)
                .bind(&swap.row_id)
                .bind(&swap.expected)
                .execute(&mut *tx)
                .await?;
            applied.push(result.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `BLOB`/`BYTEA` column the migrations create, as (table, column).
    fn byte_columns(dir: &str) -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut table = String::new();
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
                if upper.len() >= 3 && upper[0] == "CREATE" && upper[1] == "TABLE" {
                    table = words[2].trim_end_matches('(').to_owned();
                }
                if upper.len() >= 6 && upper[0] == "ALTER" && upper[3] == "ADD" {
                    let kind = upper[5].trim_end_matches(';').to_owned();
                    if kind == "BLOB" || kind == "BYTEA" {
                        found.push((words[2].to_owned(), words[4].to_owned()));
                    }
                } else if upper.len() >= 2 {
                    let kind = upper[1].trim_end_matches(',');
                    if kind == "BLOB" || kind == "BYTEA" {
                        found.push((table.clone(), words[0].to_owned()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_byte_column_of_the_schema_is_a_listed_sealed_column_or_a_known_non_secret() {
        // Raw webhook bodies are bytes too, but Meta's payloads, not secrets.
        let not_secrets = [("inbox", "body")];
        for dir in ["sqlite", "sqlite-inbox", "postgres"] {
            let columns = byte_columns(dir);
            assert!(!columns.is_empty(), "{dir}: no byte columns found");
            for (table, column) in columns {
                let listed = SEALED_COLUMNS
                    .iter()
                    .any(|c| c.table == table && c.column == column);
                let exempt = not_secrets.iter().any(|(t, c)| *t == table && *c == column);
                assert!(
                    listed || exempt,
                    "{dir}: {table}.{column} holds bytes but is not in SEALED_COLUMNS"
                );
            }
        }
    }

    #[test]
    fn every_listed_sealed_column_exists_in_both_schemas() {
        for dir in ["sqlite", "postgres"] {
            let columns = byte_columns(dir);
            for sealed in SEALED_COLUMNS {
                assert!(
                    columns
                        .iter()
                        .any(|(t, c)| t == sealed.table && c == sealed.column),
                    "{dir}: {sealed} is not a byte column"
                );
            }
        }
    }
}
