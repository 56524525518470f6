//! Status webhooks as Meta sent them, kept whole. A status may arrive before its message exists
//! (Meta does not order webhooks); it waits here and is applied when the message appears.

use super::{Conn, Store, StoreError, col};

#[derive(Debug)]
pub struct NewStatus<'a> {
    pub connection_id: &'a str,
    pub wamid: &'a str,
    pub status: &'a str,
    pub status_rank: i64,
    pub meta_timestamp: Option<i64>,
    pub recipient_id: Option<&'a str>,
    /// The status object as JSON text.
    pub payload: &'a str,
    pub now: i64,
}

/// The furthest status recorded for a wamid.
#[derive(Debug, Clone)]
pub struct RecordedStatus {
    pub status: String,
    pub status_rank: i64,
    pub payload: String,
}

impl Store {
    /// Keeps a status; the same status redelivered is stored once.
    pub async fn insert_status(
        &self,
        conn: &mut Conn,
        s: &NewStatus<'_>,
    ) -> Result<(), StoreError> {
        // The unique index treats NULLs as distinct, so a status whose timestamp is not a number
        // (stored as NULL) is looked for first; a numeric one is left to the index.
        sqlx::query(
            "INSERT INTO statuses (connection_id, wamid, status, status_rank, meta_timestamp,
                 recipient_id, payload, received_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE NOT EXISTS (
                 SELECT 1 FROM statuses
                 WHERE connection_id = $1 AND wamid = $2 AND status = $3
                   AND $5 IS NULL AND meta_timestamp IS NULL)
             ON CONFLICT (connection_id, wamid, status, meta_timestamp) DO NOTHING",
        )
        .bind(s.connection_id)
        .bind(s.wamid)
        .bind(s.status)
        .bind(s.status_rank)
        .bind(s.meta_timestamp)
        .bind(s.recipient_id)
        .bind(s.payload)
        .bind(s.now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The highest-ranked status recorded for a wamid, if any outranks `above_rank`.
    pub async fn furthest_status(
        &self,
        conn: &mut Conn,
        connection_id: &str,
        wamid: &str,
        above_rank: i64,
    ) -> Result<Option<RecordedStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT status, status_rank, payload FROM statuses
             WHERE connection_id = $1 AND wamid = $2 AND status_rank > $3
             ORDER BY status_rank DESC, id DESC LIMIT 1",
        )
        .bind(connection_id)
        .bind(wamid)
        .bind(above_rank)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| {
            Ok(RecordedStatus {
                status: col(&r, "status")?,
                status_rank: col(&r, "status_rank")?,
                payload: col(&r, "payload")?,
            })
        })
        .transpose()
    }

    /// Every status kept for a message, oldest first (for history views and tests).
    pub async fn statuses_of(
        &self,
        connection_id: &str,
        wamid: &str,
    ) -> Result<Vec<RecordedStatus>, StoreError> {
        sqlx::query(
            "SELECT status, status_rank, payload FROM statuses
             WHERE connection_id = $1 AND wamid = $2 ORDER BY id",
        )
        .bind(connection_id)
        .bind(wamid)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(RecordedStatus {
                status: col(r, "status")?,
                status_rank: col(r, "status_rank")?,
                payload: col(r, "payload")?,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{connection_row, store_with_tenant};

    async fn store_with_a_connection(dir: &std::path::Path) -> Store {
        let store = store_with_tenant(dir).await;
        store
            .insert_connection(&connection_row("c1", "106540352242922"))
            .await
            .unwrap();
        store
    }

    /// Found by the webhook fuzz target: a status webhook whose `timestamp` is not digits,
    /// delivered twice, left two status rows.
    #[tokio::test]
    async fn a_status_without_a_numeric_timestamp_is_stored_once_when_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_connection(dir.path()).await;
        for meta_timestamp in [None, None, Some(1_750_030_073), Some(1_750_030_073)] {
            let mut tx = store.begin().await.unwrap();
            store
                .insert_status(
                    &mut tx,
                    &NewStatus {
                        connection_id: "c1",
                        wamid: "wamid.1",
                        status: "sent",
                        status_rank: 1,
                        meta_timestamp,
                        recipient_id: None,
                        payload: "{}",
                        now: 2,
                    },
                )
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(store.statuses_of("c1", "wamid.1").await.unwrap().len(), 2);
    }
}
