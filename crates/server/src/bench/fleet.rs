//! Many tenants and numbers for the benchmarks: tenants straight into the store (one password
//! hash shared by all, as hashing 10,000 passwords would take minutes and measures nothing the
//! benchmarks are about), each with its own API key; numbers registered with the emulator and
//! connected through the REST API with their tenant's key, as a platform's tenants would.
//!
//! Number `i` belongs to tenant `i % tenants`, so every tenant has numbers when there are at
//! least as many numbers as tenants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::REQUEST_TIMEOUT;
use crate::auth::{api_key, password};
use crate::clock::now_ms;
use crate::ids::{new_id, random_token};
use crate::store::Store;
use crate::store::tenants::NewTenant;

/// Concurrent connection requests while setting up (each one is a credential check at Meta).
const CONNECT_CONCURRENCY: usize = 16;
/// How long the template syncs that connecting queues may take to finish.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(900);

/// What a fleet is made of.
pub(super) struct FleetShape {
    pub tenants: u64,
    pub numbers: u64,
    /// Graph ids start here, so two fleets in one run do not collide.
    pub first_id: u64,
    /// A template approved on every number's account.
    pub template: Option<TemplateSeed>,
    /// Sends per second Meta allows each number (the emulator enforces it).
    pub throughput_per_second: u32,
}

pub(super) struct TemplateSeed {
    pub name: &'static str,
    pub body: &'static str,
}

pub(super) struct FleetTenant {
    pub api_key: SecretString,
}

/// One connected number and what it takes to send webhooks for it and messages from it.
pub(super) struct FleetNumber {
    pub tenant: usize,
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_phone_number: String,
    pub app_secret: String,
    pub connection_id: String,
    pub webhook_url: Arc<str>,
}

pub(super) struct Fleet {
    pub tenants: Vec<FleetTenant>,
    pub numbers: Vec<FleetNumber>,
}

impl Fleet {
    /// Creates the tenants and connects the numbers, then waits until the work connecting queued
    /// (template syncs) is done, so it does not run during the measurement.
    pub async fn build(
        store: &Store,
        server_base: &str,
        meta: &emulator::RunningEmulator,
        shape: &FleetShape,
    ) -> anyhow::Result<Self> {
        if shape.tenants == 0 || shape.numbers < shape.tenants {
            bail!(
                "--numbers ({}) must be at least --tenants ({}), which must be at least 1",
                shape.numbers,
                shape.tenants
            );
        }
        let started = Instant::now();
        let tenants = create_tenants(store, shape.tenants, shape.first_id).await?;
        tracing::info!(
            tenants = tenants.len(),
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "benchmark tenants created"
        );
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build an HTTP client")?;
        let connecting = Instant::now();
        let tenants_ref = &tenants;
        let client_ref = &client;
        let mut connected = futures::stream::iter(0..shape.numbers)
            .map(|n| async move {
                let tenant = (n % shape.tenants) as usize;
                connect(
                    client_ref,
                    server_base,
                    meta,
                    shape,
                    n,
                    tenant,
                    &tenants_ref[tenant].api_key,
                )
                .await
            })
            .buffered(CONNECT_CONCURRENCY);
        let mut numbers = Vec::with_capacity(shape.numbers as usize);
        let mut last_log = Instant::now();
        while let Some(number) = connected.next().await {
            numbers.push(number?);
            if last_log.elapsed() >= Duration::from_secs(5) {
                tracing::info!(
                    connected = numbers.len(),
                    of = shape.numbers,
                    "connecting benchmark numbers"
                );
                last_log = Instant::now();
            }
        }
        drop(connected);
        tracing::info!(
            numbers = numbers.len(),
            seconds = format!("{:.1}", connecting.elapsed().as_secs_f64()),
            "benchmark numbers connected"
        );
        wait_for_template_syncs(store).await?;
        Ok(Self { tenants, numbers })
    }
}

async fn create_tenants(
    store: &Store,
    count: u64,
    first_id: u64,
) -> anyhow::Result<Vec<FleetTenant>> {
    let password_hash = password::hash(SecretString::from(random_token(18)))
        .await
        .context("cannot hash the benchmark password")?;
    let mut tenants = Vec::with_capacity(count as usize);
    for n in 0..count {
        let key = api_key::mint();
        let tenant_id = new_id();
        store
            .create_tenant(&NewTenant {
                tenant_id: &tenant_id,
                name: &format!("Bench {n}"),
                user_id: &new_id(),
                email: &format!("bench-{first_id}-{n}@example.com"),
                password_hash: &password_hash,
                api_key_id: &new_id(),
                api_key_hash: &key.hash,
                api_key_prefix: &key.display_prefix,
                now: now_ms(),
            })
            .await
            .map_err(|error| anyhow::anyhow!("cannot create benchmark tenant {n}: {error:?}"))?;
        tenants.push(FleetTenant {
            api_key: key.secret,
        });
    }
    Ok(tenants)
}

/// Registers number `n` with the emulator and connects it through the API as its tenant.
async fn connect(
    client: &reqwest::Client,
    server_base: &str,
    meta: &emulator::RunningEmulator,
    shape: &FleetShape,
    n: u64,
    tenant: usize,
    api_key: &SecretString,
) -> anyhow::Result<FleetNumber> {
    let id = shape.first_id + n;
    let phone_number_id = (900_000_000_000_000u64 + id).to_string();
    let waba_id = (800_000_000_000_000u64 + id).to_string();
    let display_phone_number = format!("1555{:07}", id % 10_000_000);
    let access_token = format!("EAAbench{}", random_token(32));
    let app_secret = random_token(24);
    meta.register_phone_number(emulator::PhoneNumberRegistration {
        phone_number_id: phone_number_id.clone(),
        waba_id: waba_id.clone(),
        display_phone_number: display_phone_number.clone(),
        verified_name: format!("Bench {id}"),
        access_token: access_token.clone(),
        app_secret: app_secret.clone(),
        throughput_per_second: shape.throughput_per_second,
        ..Default::default()
    })
    .context("cannot register a number with the emulator")?;
    // The account is given, as a platform that onboarded the number knows it; otherwise the
    // first webhook would teach it, and a burst over new numbers would measure that too.
    let body = json!({
        "access_token": access_token,
        "phone_number_id": phone_number_id,
        "app_secret": app_secret,
        "waba_id": waba_id,
    });
    if let Some(template) = &shape.template {
        meta.add_template(emulator::TemplateSeed {
            waba_id: waba_id.clone(),
            name: template.name.into(),
            language: "en".into(),
            category: "UTILITY".into(),
            components: vec![json!({"type": "BODY", "text": template.body})],
            ..Default::default()
        })
        .context("cannot add the benchmark's template to the emulator")?;
    }
    let (connection_id, webhook_url) = post_connection(client, server_base, api_key, &body).await?;
    Ok(FleetNumber {
        tenant,
        phone_number_id,
        waba_id,
        display_phone_number,
        app_secret,
        connection_id,
        webhook_url: webhook_url.into(),
    })
}

/// Connects a number through `POST /api/v1/connections` as the tenant whose key this is;
/// answers the new connection's id and webhook URL.
pub(super) async fn post_connection(
    client: &reqwest::Client,
    server_base: &str,
    api_key: &SecretString,
    body: &Value,
) -> anyhow::Result<(String, String)> {
    let response = client
        .post(format!("{server_base}/api/v1/connections"))
        .header(AUTHORIZATION, format!("Bearer {}", api_key.expose_secret()))
        .json(body)
        .send()
        .await
        .context("POST /api/v1/connections failed")?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .context("POST /api/v1/connections did not answer JSON")?;
    if status != reqwest::StatusCode::CREATED {
        bail!("POST /api/v1/connections answered {status}: {answer}");
    }
    let field = |name: &str| {
        answer
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the new connection has no {name}"))
    };
    Ok((field("id")?, field("webhook_url")?))
}

/// Waits until no template sync is waiting or running.
async fn wait_for_template_syncs(store: &Store) -> anyhow::Result<()> {
    let give_up = Instant::now() + SETTLE_TIMEOUT;
    let mut last_log = Instant::now();
    loop {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE kind = $1 AND state IN ('ready', 'running')",
        )
        .bind(crate::templates::sync::SYNC_JOB)
        .fetch_one(store.reader())
        .await
        .context("cannot count the template syncs")?;
        let open: i64 = crate::store::col(&row, "n")?;
        if open == 0 {
            return Ok(());
        }
        if Instant::now() >= give_up {
            bail!(
                "{open} template syncs were still open after {} s",
                SETTLE_TIMEOUT.as_secs()
            );
        }
        if last_log.elapsed() >= Duration::from_secs(5) {
            tracing::info!(open, "waiting for the template syncs connecting queued");
            last_log = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
