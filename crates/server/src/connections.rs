//! Connecting a tenant's WhatsApp Business number: credentials are checked with Meta before
//! anything is stored, sealed by the vault, rotated, re-checked and wiped on disconnect.

use cloudapi::error::ErrorClass;
use cloudapi::{GraphClient, GraphError, MetaError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::clock::now_ms;
use crate::ids::{new_id, random_token};
use crate::inbound::keys::ConnectionKeys;
use crate::store::connections::{
    ConnectionRow, CredentialUpdate, InsertConnectionError, STATUS_CONNECTED, STATUS_NEEDS_REAUTH,
};
use crate::store::{Store, StoreError};
use crate::validation::{FieldErrors, check_credential, check_meta_id};
use crate::vault::{SecretSlot, Vault, VaultError};

const MAX_TOKEN_LEN: usize = 4096;
const MAX_SECRET_LEN: usize = 256;

/// `POST /api/v1/connections`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    pub access_token: SecretString,
    pub phone_number_id: String,
    pub app_secret: SecretString,
    #[serde(default)]
    pub waba_id: Option<String>,
    #[serde(default)]
    pub verify_token: Option<SecretString>,
    #[serde(default)]
    pub auto_reply: Option<bool>,
}

/// `PATCH /api/v1/connections/{id}`: only what is given changes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub app_secret: Option<SecretString>,
    #[serde(default)]
    pub verify_token: Option<SecretString>,
    #[serde(default)]
    pub auto_reply: Option<bool>,
    /// Messages per second this number may send (Meta's default is 80, up to 1000).
    #[serde(default)]
    pub throughput_per_second: Option<i64>,
    /// The WhatsApp Business Account, for a connection made without it (templates live there).
    #[serde(default)]
    pub waba_id: Option<String>,
}

/// Meta raises a number's throughput to at most this.
pub const MAX_THROUGHPUT: i64 = 1000;
pub const DEFAULT_THROUGHPUT: i64 = 80;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error("Meta rejected the credentials: {}", .0.details().unwrap_or("no reason given"))]
    MetaRejected(Box<MetaError>),
    #[error("Meta could not be reached to check the credentials: {0}")]
    MetaUnreachable(GraphError),
    #[error("this phone number is already connected")]
    PhoneNumberTaken,
    #[error("connection not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A connection with its verify token opened, ready to show to its tenant.
pub struct ConnectionView {
    pub row: ConnectionRow,
    pub verify_token: Option<String>,
}

/// The outcome of re-checking stored credentials.
pub struct TestOutcome {
    pub ok: bool,
    pub view: ConnectionView,
    /// Meta's error when the check failed.
    pub meta: Option<Value>,
    pub message: Option<String>,
}

pub struct Connections<'a> {
    pub store: &'a Store,
    pub vault: &'a Vault,
    pub graph: &'a GraphClient,
    /// Told when credentials change, so webhooks stop using the old ones at once.
    pub webhook_keys: &'a ConnectionKeys,
}

impl Connections<'_> {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
    pub async fn create(
        &self,
        tenant_id: &str,
        input: CreateConnection,
    ) -> Result<ConnectionView, ConnectionError> {
        let mut errors = FieldErrors::new();
        let phone_number_id = input.phone_number_id.trim().to_owned();
        check_meta_id(&mut errors, "phone_number_id", &phone_number_id);
        let waba_id = input
            .waba_id
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned);
        if let Some(waba) = &waba_id {
            check_meta_id(&mut errors, "waba_id", waba);
        }
        check_credential(
            &mut errors,
            "access_token",
            input.access_token.expose_secret(),
            MAX_TOKEN_LEN,
        );
        check_credential(
            &mut errors,
            "app_secret",
            input.app_secret.expose_secret(),
            MAX_SECRET_LEN,
        );
        if let Some(verify) = &input.verify_token {
            check_credential(
                &mut errors,
                "verify_token",
                verify.expose_secret(),
                MAX_SECRET_LEN,
            );
        }
        errors.finish().map_err(ConnectionError::Invalid)?;

        // Credentials first: whether a number is connected here is told only to someone who holds it.
        let number = self
            .check_with_meta(&input.access_token, &phone_number_id)
            .await?;

        let id = new_id();
        let verify_token = input
            .verify_token
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_else(|| random_token(24));
        let now = now_ms();
        let row = ConnectionRow {
            access_token: Some(self.seal(&id, "access_token", input.access_token.expose_secret())),
            app_secret: Some(self.seal(&id, "app_secret", input.app_secret.expose_secret())),
            verify_token: Some(self.seal(&id, "verify_token", &verify_token)),
            tenant_id: tenant_id.to_owned(),
            phone_number_id: phone_number_id.clone(),
            waba_id,
            display_phone_number: number
                .display_phone_number
                .clone()
                .unwrap_or_else(|| phone_number_id.clone()),
            verified_name: number.verified_name.clone().unwrap_or_default(),
            quality_rating: number.quality_rating.clone(),
            connection_key: random_token(32),
            status: STATUS_CONNECTED.to_owned(),
            status_reason: None,
            auto_reply: input.auto_reply.unwrap_or(false),
            throughput_per_second: DEFAULT_THROUGHPUT,
            templates_synced_at: None,
            created_at: now,
            updated_at: now,
            id,
        };
        match self.store.insert_connection(&row).await {
            Ok(()) => {}
            Err(InsertConnectionError::PhoneNumberTaken) => {
                return Err(ConnectionError::PhoneNumberTaken);
            }
            Err(InsertConnectionError::Store(e)) => return Err(e.into()),
        }
        tracing::info!(connection_id = %row.id, phone_number_id = %row.phone_number_id, "connection created");
        self.queue_template_sync(&row, "created").await;
        Ok(ConnectionView {
            row,
            verify_token: Some(verify_token),
        })
    }

    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<ConnectionView, ConnectionError> {
        let row = self
            .store
            .connection(tenant_id, id)
            .await?
            .ok_or(ConnectionError::NotFound)?;
        self.view(row)
    }

    pub async fn list(&self, tenant_id: &str) -> Result<Vec<ConnectionView>, ConnectionError> {
        self.store
            .connections(tenant_id)
            .await?
            .into_iter()
            .map(|row| self.view(row))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, connection_id = %id))]
    pub async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        input: UpdateConnection,
    ) -> Result<ConnectionView, ConnectionError> {
        let existing = self
            .store
            .connection(tenant_id, id)
            .await?
            .ok_or(ConnectionError::NotFound)?;
        if existing.status == crate::store::connections::STATUS_DISCONNECTED {
            return Err(ConnectionError::NotFound);
        }
        let mut errors = FieldErrors::new();
        if let Some(token) = &input.access_token {
            check_credential(
                &mut errors,
                "access_token",
                token.expose_secret(),
                MAX_TOKEN_LEN,
            );
        }
        if let Some(secret) = &input.app_secret {
            check_credential(
                &mut errors,
                "app_secret",
                secret.expose_secret(),
                MAX_SECRET_LEN,
            );
        }
        if let Some(verify) = &input.verify_token {
            check_credential(
                &mut errors,
                "verify_token",
                verify.expose_secret(),
                MAX_SECRET_LEN,
            );
        }
        if let Some(rate) = input.throughput_per_second
            && !(1..=MAX_THROUGHPUT).contains(&rate)
        {
            errors.add_limit(
                "throughput_per_second",
                format!("must be between 1 and {MAX_THROUGHPUT} messages per second"),
                MAX_THROUGHPUT as u64,
            );
        }
        let waba_id = input.waba_id.as_deref().map(str::trim).map(str::to_owned);
        if let Some(waba) = &waba_id {
            check_meta_id(&mut errors, "waba_id", waba);
        }
        if input.access_token.is_none()
            && input.app_secret.is_none()
            && input.verify_token.is_none()
            && input.auto_reply.is_none()
            && input.throughput_per_second.is_none()
            && waba_id.is_none()
        {
            errors.add(
                "body",
                "give at least one of access_token, app_secret, verify_token, auto_reply, throughput_per_second, waba_id",
            );
        }
        errors.finish().map_err(ConnectionError::Invalid)?;

        let mut update = CredentialUpdate {
            auto_reply: input.auto_reply,
            throughput_per_second: input.throughput_per_second,
            waba_id,
            ..CredentialUpdate::default()
        };
        if let Some(token) = &input.access_token {
            let number = self
                .check_with_meta(token, &existing.phone_number_id)
                .await?;
            update.access_token = Some(self.seal(id, "access_token", token.expose_secret()));
            update.display_phone_number = number.display_phone_number;
            update.verified_name = number.verified_name;
            update.quality_rating = number.quality_rating;
            update.mark_connected = true;
        }
        if let Some(secret) = &input.app_secret {
            update.app_secret = Some(self.seal(id, "app_secret", secret.expose_secret()));
        }
        if let Some(verify) = &input.verify_token {
            update.verify_token = Some(self.seal(id, "verify_token", verify.expose_secret()));
        }
        let row = self
            .store
            .update_connection(tenant_id, id, &update, now_ms())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        self.webhook_keys.forget_connection(id);
        if input.access_token.is_some() || input.waba_id.is_some() {
            self.queue_template_sync(&row, &format!("changed:{}", now_ms()))
                .await;
        }
        self.view(row)
    }

    /// Templates are pulled once a connection can read them; a failure to queue is logged, not
    /// fatal (the periodic sync and the API's sync still cover it).
    async fn queue_template_sync(&self, row: &ConnectionRow, reason: &str) {
        if row.waba_id.is_none() {
            return;
        }
        if let Err(error) =
            crate::templates::sync::enqueue_sync(self.store, row, reason, now_ms()).await
        {
            tracing::warn!(connection_id = %row.id, error = %error, "could not queue the template sync");
        }
    }

    /// Re-checks the stored token with Meta. A token Meta refuses marks the connection
    /// `needs_reauth`; one it accepts again lifts that.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, connection_id = %id))]
    pub async fn test(&self, tenant_id: &str, id: &str) -> Result<TestOutcome, ConnectionError> {
        let row = self
            .store
            .connection(tenant_id, id)
            .await?
            .ok_or(ConnectionError::NotFound)?;
        let Some(sealed) = row.access_token.as_deref() else {
            let message =
                "this connection is disconnected; it has no credentials to test".to_owned();
            return Ok(TestOutcome {
                ok: false,
                view: self.view(row)?,
                meta: None,
                message: Some(message),
            });
        };
        let token = self
            .vault
            .open(SecretSlot::new("connections", "access_token", id), sealed)?;
        match self
            .graph
            .get_phone_number(&token, &row.phone_number_id)
            .await
        {
            Ok(number) => {
                let update = CredentialUpdate {
                    display_phone_number: number.display_phone_number,
                    verified_name: number.verified_name,
                    quality_rating: number.quality_rating,
                    mark_connected: true,
                    ..CredentialUpdate::default()
                };
                let row = self
                    .store
                    .update_connection(tenant_id, id, &update, now_ms())
                    .await?
                    .ok_or(ConnectionError::NotFound)?;
                Ok(TestOutcome {
                    ok: true,
                    view: self.view(row)?,
                    meta: None,
                    message: None,
                })
            }
            Err(error) => {
                let meta = error.meta_error().map(meta_json);
                let message = error
                    .meta_error()
                    .and_then(MetaError::details)
                    .map(str::to_owned)
                    .unwrap_or_else(|| error.to_string());
                let mut row = row;
                if error.class() == ErrorClass::CredentialsRejected {
                    self.store
                        .set_connection_status(id, STATUS_NEEDS_REAUTH, Some(&message), now_ms())
                        .await?;
                    row.status = STATUS_NEEDS_REAUTH.to_owned();
                    row.status_reason = Some(message.clone());
                }
                Ok(TestOutcome {
                    ok: false,
                    view: self.view(row)?,
                    meta,
                    message: Some(message),
                })
            }
        }
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, connection_id = %id))]
    pub async fn disconnect(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<ConnectionView, ConnectionError> {
        let row = self
            .store
            .disconnect_connection(tenant_id, id, now_ms())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        self.webhook_keys.forget_connection(id);
        tracing::info!("connection disconnected; credentials wiped");
        self.view(row)
    }

    async fn check_with_meta(
        &self,
        token: &SecretString,
        phone_number_id: &str,
    ) -> Result<cloudapi::phone_number::PhoneNumber, ConnectionError> {
        match self.graph.get_phone_number(token, phone_number_id).await {
            Ok(number) => Ok(number),
            Err(GraphError::Meta { error, .. }) => Err(ConnectionError::MetaRejected(error)),
            Err(other) => Err(ConnectionError::MetaUnreachable(other)),
        }
    }

    fn seal(&self, id: &str, column: &'static str, secret: &str) -> Vec<u8> {
        self.vault
            .seal(SecretSlot::new("connections", column, id), secret)
    }

    fn view(&self, row: ConnectionRow) -> Result<ConnectionView, ConnectionError> {
        let verify_token = match row.verify_token.as_deref() {
            Some(sealed) => Some(
                self.vault
                    .open(
                        SecretSlot::new("connections", "verify_token", &row.id),
                        sealed,
                    )?
                    .expose_secret()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(ConnectionView { row, verify_token })
    }
}

/// Meta's error as the contract's `details.meta`.
pub fn meta_json(error: &MetaError) -> Value {
    serde_json::to_value(error).unwrap_or(Value::Null)
}
