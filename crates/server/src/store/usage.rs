//! Usage for billing: messages Meta priced, per tenant, connection, UTC day, category and whether
//! Meta bills them, counted once per message from the `pricing` of its status webhooks.

use super::{Conn, Store, StoreError, col};

/// One priced message to count.
#[derive(Debug)]
pub struct PricedMessage<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub wamid: &'a str,
    /// `YYYY-MM-DD`, UTC.
    pub day: &'a str,
    pub category: &'a str,
    pub billable: bool,
    pub pricing_model: &'a str,
}

#[derive(Debug, Clone)]
pub struct UsageRow {
    pub connection_id: String,
    pub day: String,
    pub category: String,
    pub billable: bool,
    pub pricing_model: String,
    pub messages: i64,
}

impl Store {
    /// Counts a priced message unless it was counted before (Meta prices it on every status).
    pub async fn count_priced_message(
        &self,
        conn: &mut Conn,
        m: &PricedMessage<'_>,
    ) -> Result<bool, StoreError> {
        let first = sqlx::query(
            "INSERT INTO usage_counted (connection_id, wamid) VALUES ($1, $2)
             ON CONFLICT (connection_id, wamid) DO NOTHING",
        )
        .bind(m.connection_id)
        .bind(m.wamid)
        .execute(&mut *conn)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO usage_daily (tenant_id, connection_id, day, category, billable, pricing_model, messages)
             VALUES ($1, $2, $3, $4, $5, $6, 1)
             ON CONFLICT (tenant_id, connection_id, day, category, billable, pricing_model)
             DO UPDATE SET messages = usage_daily.messages + 1",
        )
        .bind(m.tenant_id)
        .bind(m.connection_id)
        .bind(m.day)
        .bind(m.category)
        .bind(i64::from(m.billable))
        .bind(m.pricing_model)
        .execute(&mut *conn)
        .await?;
        Ok(true)
    }

    /// The tenant's usage between two UTC days (inclusive), optionally for one connection.
    pub async fn usage(
        &self,
        tenant_id: &str,
        from: &str,
        to: &str,
        connection_id: Option<&str>,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let mut sql = String::from(
            "SELECT connection_id, day, category, billable, pricing_model, messages FROM usage_daily
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3",
        );
        if connection_id.is_some() {
            sql.push_str(" AND connection_id = $4");
        }
        sql.push_str(" ORDER BY day, connection_id, category, billable DESC");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(from)
            .bind(to)
            .bind(connection_id.unwrap_or(""))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                Ok(UsageRow {
                    connection_id: col(r, "connection_id")?,
                    day: col(r, "day")?,
                    category: col(r, "category")?,
                    billable: col::<i64>(r, "billable")? != 0,
                    pricing_model: col(r, "pricing_model")?,
                    messages: col(r, "messages")?,
                })
            })
            .collect()
    }
}
