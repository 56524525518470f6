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
        sqlx::query(
            "INSERT INTO statuses (connection_id, wamid, status, status_rank, meta_timestamp,
                 recipient_id, payload, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
