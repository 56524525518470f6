//! Managing a tenant's endpoints: inputs parsed at the edge (URL, event types, description), the
//! signing secret generated and sealed, shown only when made; the delivery log and re-sends.

use secrecy::SecretString;
use serde::Deserialize;

use super::{EVENT_TYPES, Hooks};
use crate::clock::now_ms;
use crate::store::webhook_endpoints::{
    AttemptRow, DeliveryRow, EndpointChanges, EndpointRow, Resend,
};
use crate::store::{Store, StoreError};
use crate::validation::FieldErrors;
use crate::vault::{SecretSlot, Vault};

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 500;
pub const MAX_ENDPOINTS_PER_TENANT: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// 422, naming the fields.
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    /// 422: the tenant has as many endpoints as allowed.
    #[error("a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints")]
    TooMany,
    /// 404, for a missing id and another tenant's alike.
    #[error("webhook endpoint not found")]
    NotFound,
    /// 404: no such delivery of this endpoint.
    #[error("delivery not found")]
    DeliveryNotFound,
    /// 409: an attempt of this delivery is in flight.
    #[error("an attempt of this delivery is in progress; try again when it has finished")]
    DeliveryInFlight,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A receiving URL: http or https, with a host, no credentials, of a sane length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is required".into());
        }
        if raw.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials; the signature authenticates wagate".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event types asked for: known ones only, at least one, each once, in the order given.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err(format!(
            "choose at least one of: {}",
            EVENT_TYPES.join(", ")
        ));
    }
    let mut events: Vec<String> = Vec::new();
    for name in raw {
        if !EVENT_TYPES.contains(&name.as_str()) {
            return Err(format!(
                "{name:?} is not an event type; valid ones are: {}",
                EVENT_TYPES.join(", ")
            ));
        }
        if !events.contains(name) {
            events.push(name.clone());
        }
    }
    Ok(events)
}

fn parse_description(errors: &mut FieldErrors, raw: Option<String>) -> Option<String> {
    let text = raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())?;
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        errors.add_limit(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
            MAX_DESCRIPTION_LEN as u64,
        );
        return None;
    }
    Some(text)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A delivery with its attempts, oldest attempt first.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    pub delivery: DeliveryRow,
    pub attempts: Vec<AttemptRow>,
}

pub struct Endpoints<'a> {
    pub store: &'a Store,
    pub vault: &'a Vault,
    pub hooks: &'a Hooks,
    /// Whether loopback and private addresses may be registered (`WAGATE_HOOKS_ALLOW_PRIVATE_URLS`).
    pub allow_private_urls: bool,
}

impl Endpoints<'_> {
    /// The URL, unless it names a private host and those are not allowed.
    fn callable(&self, url: EndpointUrl) -> Result<EndpointUrl, String> {
        if self.allow_private_urls {
            return Ok(url);
        }
        match url::Url::parse(url.as_str())
            .ok()
            .as_ref()
            .and_then(url::Url::host)
        {
            Some(host) => match super::address::refuse_host(&host) {
                Some(reason) => Err(reason.to_owned()),
                None => Ok(url),
            },
            None => Err("must name a host".into()),
        }
    }

    /// Registers an endpoint; the answer carries its secret, which is never shown again.
    pub async fn create(
        &self,
        tenant_id: &str,
        input: CreateEndpoint,
    ) -> Result<(EndpointRow, SecretString), EndpointError> {
        let mut errors = FieldErrors::new();
        let url = EndpointUrl::parse(&input.url)
            .and_then(|url| self.callable(url))
            .map_err(|reason| errors.add("url", reason))
            .ok();
        let events = parse_events(&input.events)
            .map_err(|reason| errors.add("events", reason))
            .ok();
        let description = parse_description(&mut errors, input.description);
        let (Some(url), Some(events)) = (url, events) else {
            return Err(EndpointError::Invalid(errors));
        };
        errors.finish().map_err(EndpointError::Invalid)?;
        if self.store.count_webhook_endpoints(tenant_id).await? >= MAX_ENDPOINTS_PER_TENANT {
            return Err(EndpointError::TooMany);
        }
        let id = crate::ids::new_id();
        let secret = super::sign::new_secret();
        let now = now_ms();
        let row = EndpointRow {
            secret: self.vault.seal(slot(&id), &secret),
            id,
            tenant_id: tenant_id.to_owned(),
            url: url.as_str().to_owned(),
            description,
            events,
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&row).await?;
        self.hooks.endpoints_changed(tenant_id);
        Ok((row, SecretString::from(secret)))
    }

    pub async fn list(&self, tenant_id: &str) -> Result<Vec<EndpointRow>, EndpointError> {
        Ok(self.store.webhook_endpoints(tenant_id).await?)
    }

    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<EndpointRow, EndpointError> {
        if !crate::ids::looks_like_id(id) {
            return Err(EndpointError::NotFound);
        }
        self.store
            .webhook_endpoint(tenant_id, id)
            .await?
            .ok_or(EndpointError::NotFound)
    }

    pub async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        input: UpdateEndpoint,
    ) -> Result<EndpointRow, EndpointError> {
        self.get(tenant_id, id).await?;
        let mut errors = FieldErrors::new();
        let mut changes = EndpointChanges {
            enabled: input.enabled,
            ..EndpointChanges::default()
        };
        if let Some(url) = &input.url {
            match EndpointUrl::parse(url).and_then(|url| self.callable(url)) {
                Ok(url) => changes.url = Some(url.as_str().to_owned()),
                Err(reason) => errors.add("url", reason),
            }
        }
        if let Some(events) = &input.events {
            match parse_events(events) {
                Ok(events) => changes.events = Some(events),
                Err(reason) => errors.add("events", reason),
            }
        }
        if let Some(description) = input.description {
            changes.description = Some(parse_description(&mut errors, description));
        }
        errors.finish().map_err(EndpointError::Invalid)?;
        let row = self
            .store
            .update_webhook_endpoint(tenant_id, id, &changes, now_ms())
            .await?
            .ok_or(EndpointError::NotFound)?;
        self.hooks.endpoints_changed(tenant_id);
        if changes.enabled == Some(true) {
            // Deliveries held while it was off may go now.
            self.hooks.wake_worker();
        }
        Ok(row)
    }

    /// A new secret replaces the old one at once; the answer is the only place it is shown.
    pub async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(EndpointRow, SecretString), EndpointError> {
        let row = self.get(tenant_id, id).await?;
        let secret = super::sign::new_secret();
        let sealed = self.vault.seal(slot(&row.id), &secret);
        if !self
            .store
            .set_webhook_secret(tenant_id, id, &sealed, now_ms())
            .await?
        {
            return Err(EndpointError::NotFound);
        }
        let row = self.get(tenant_id, id).await?;
        Ok((row, SecretString::from(secret)))
    }

    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<EndpointRow, EndpointError> {
        let row = self.get(tenant_id, id).await?;
        if !self.store.delete_webhook_endpoint(tenant_id, id).await? {
            return Err(EndpointError::NotFound);
        }
        self.hooks.endpoints_changed(tenant_id);
        Ok(row)
    }

    /// The endpoint's deliveries, newest first, each with its attempts.
    pub async fn deliveries(
        &self,
        tenant_id: &str,
        id: &str,
        limit: i64,
        before_seq: Option<i64>,
    ) -> Result<Vec<DeliveryLog>, EndpointError> {
        let endpoint = self.get(tenant_id, id).await?;
        let deliveries = self
            .store
            .webhook_deliveries(&endpoint.id, limit, before_seq)
            .await?;
        let (Some(newest), Some(oldest)) = (deliveries.first(), deliveries.last()) else {
            return Ok(Vec::new());
        };
        let mut attempts = self
            .store
            .webhook_attempts(&endpoint.id, oldest.seq, newest.seq)
            .await?;
        Ok(deliveries
            .into_iter()
            .map(|delivery| {
                let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut attempts)
                    .into_iter()
                    .partition(|a| a.delivery_id == delivery.id);
                attempts = rest;
                DeliveryLog {
                    delivery,
                    attempts: mine,
                }
            })
            .collect())
    }

    /// Queues a fresh round of attempts for a delivery, due now.
    pub async fn resend(
        &self,
        tenant_id: &str,
        id: &str,
        delivery_id: &str,
    ) -> Result<DeliveryRow, EndpointError> {
        let endpoint = self.get(tenant_id, id).await?;
        if !crate::ids::looks_like_id(delivery_id) {
            return Err(EndpointError::DeliveryNotFound);
        }
        match self
            .store
            .resend_webhook_delivery(&endpoint.id, delivery_id, now_ms())
            .await?
        {
            Resend::Queued(row) => {
                self.hooks.wake_worker();
                Ok(*row)
            }
            Resend::InFlight => Err(EndpointError::DeliveryInFlight),
            Resend::NotFound => Err(EndpointError::DeliveryNotFound),
        }
    }
}

fn slot(id: &str) -> SecretSlot<'_> {
    SecretSlot::new("webhook_endpoints", "secret", id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_or_https() {
        assert!(EndpointUrl::parse("https://hooks.example.com/wagate?x=1").is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/in").is_ok());
        for bad in [
            "",
            "ftp://example.com/in",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "javascript:alert(1)",
            "not a url",
            "https://example.com/#frag",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(EndpointUrl::parse(&long).is_err());
    }

    #[test]
    fn events_must_be_known_and_are_kept_once() {
        let parsed = parse_events(&[
            "message.created".into(),
            "message.status".into(),
            "message.created".into(),
        ])
        .unwrap();
        assert_eq!(parsed, ["message.created", "message.status"]);
        let error = parse_events(&["message.deleted".into()]).unwrap_err();
        assert!(error.contains("connection.updated"), "{error}");
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["unread.changed".into()]).is_err());
    }
}
