//! A real wagate server on port 0 with its own database (SQLite file, or a fresh PostgreSQL
//! database), its own Cloud API emulator, and a tenant with an API key.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emulator::{EmulatorConfig, PhoneNumberRegistration, RetryPolicy, RunningEmulator};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wagate::app::state::AppState;
use wagate::app::{Application, Roles, Tuning};
use wagate::config::{DatabaseUrl, Settings};
use wagate::inbound::processor::ProcessorConfig;
use wagate::jobs::RunnerConfig;

/// Serves `app` on a task until the returned sender is used (or dropped).
fn run(app: Application) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (shutdown, server)
}

/// The password of every test tenant's owner.
pub const OWNER_PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs one behaviour test against SQLite, and against PostgreSQL when `WAGATE_TEST_DATABASE_URL`
/// is set. Under `CI=true` a missing PostgreSQL fails instead of skipping.
macro_rules! on_both_databases {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    body($crate::helpers::TestApp::spawn($crate::helpers::Db::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::helpers::postgres_url().is_some() {
                        body($crate::helpers::TestApp::spawn($crate::helpers::Db::Postgres).await).await;
                    }
                }
            }
        )*
    };
}

/// The PostgreSQL server to test on, or `None` (with a printed reason) when there is none.
pub fn postgres_url() -> Option<String> {
    match std::env::var("WAGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but WAGATE_TEST_DATABASE_URL is not set: the PostgreSQL tests must run"
                );
            }
            eprintln!("skipping the PostgreSQL run: set WAGATE_TEST_DATABASE_URL to run it");
            None
        }
    }
}

/// A PostgreSQL database made for one test and dropped after it.
pub struct TestDatabase {
    server_url: String,
    name: String,
}

impl TestDatabase {
    async fn create(server_url: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "wagate_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            wagate::ids::random_token(4)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(server_url)
            .await
            .expect("cannot reach WAGATE_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("cannot create a test database (does the role have CREATEDB?)");
        pool.close().await;
        Self {
            server_url: server_url.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.server_url).expect("WAGATE_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{}", self.name));
        url.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(pool) = sqlx::AnyPool::connect(&server_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub db: Db,
    pub address: String,
    pub client: reqwest::Client,
    pub emulator: RunningEmulator,
    pub state: AppState,
    pub tenant_id: String,
    pub api_key: String,
    /// The tenant owner's sign-in email; the password is [`OWNER_PASSWORD`].
    pub owner_email: String,
    pub data_dir: tempfile::TempDir,
    #[allow(dead_code)]
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// What the server was started with, to start it again the same way.
    settings: Settings,
    tuning: Tuning,
    _database: Option<TestDatabase>,
}

/// A second tenant of a test server.
pub struct OtherOwner {
    pub tenant_id: String,
    pub api_key: String,
    pub email: String,
}

/// Credentials of a number registered in the emulator and connected in wagate.
#[derive(Debug, Clone)]
pub struct ConnectedNumber {
    pub connection: Value,
    pub phone_number_id: String,
    pub access_token: String,
    pub app_secret: String,
}

impl ConnectedNumber {
    pub fn id(&self) -> &str {
        self.connection["id"].as_str().expect("connection id")
    }

    pub fn webhook_url(&self) -> &str {
        self.connection["webhook_url"]
            .as_str()
            .expect("webhook_url")
    }
}

static NUMBER_SEQ: AtomicU64 = AtomicU64::new(100_000);

/// The WhatsApp Business Account every test number belongs to (each test has its own emulator).
pub const TEST_WABA: &str = "102290129340398";

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Settings)) -> Self {
        wagate::telemetry::init(false);
        let emulator = emulator::start(EmulatorConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            delivery: RetryPolicy::fast(),
        })
        .await
        .expect("emulator starts");
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                Some(TestDatabase::create(&postgres_url().expect("postgres url")).await)
            }
        };
        let database_url = match &database {
            None => format!("sqlite://{}/wagate.db", data_dir.path().display()),
            Some(database) => database.url(),
        };
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: data_dir.path().to_owned(),
            database_url: DatabaseUrl::parse(&database_url).expect("database url"),
            redis_url: None,
            master_key: Some(SecretString::from(test_master_key())),
            previous_master_keys: None,
            public_url: String::new(),
            public_url_given: false,
            graph_api_base: url::Url::parse(&emulator.base_url()).expect("emulator url"),
            graph_api_version: "v24.0".into(),
            meta_app_secret: None,
            meta_verify_token: None,
            graph_timeout: Duration::from_secs(5),
            send_max_attempts: 3,
            send_outcome_grace: Duration::from_secs(2),
            job_lease: Duration::from_secs(30),
            template_sync_interval: None,
            media_fetch_attempts: 3,
            media_max_bytes: 100 * 1024 * 1024,
            hooks: wagate::config::HookSettings {
                first_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                // Enough that a receiver refusing for a few seconds is still retried.
                max_attempts: 50,
                // The receivers of these tests listen on 127.0.0.1.
                allow_private_urls: true,
                ..wagate::config::HookSettings::default()
            },
            // Tests call the API and the webhooks far faster than any person; the rate-limit
            // tests turn them on. Sign-in keeps its default: tests that sign in ten times a
            // minute do so on purpose.
            rate_limits: wagate::config::RequestLimits {
                api: None,
                webhook: None,
                ..wagate::config::RequestLimits::default()
            },
            log_json: false,
        };
        adjust(&mut settings);
        let started_with = settings.clone();
        let tuning = Tuning {
            processor: Some(ProcessorConfig {
                idle_poll: Duration::from_millis(50),
                first_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(400),
                max_attempts: 3,
                ..ProcessorConfig::default()
            }),
            jobs: Some(RunnerConfig {
                idle_poll: Duration::from_millis(50),
                first_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                ..RunnerConfig::default()
            }),
            ..Tuning::default()
        };
        let app = Application::build(
            settings,
            Roles {
                http: true,
                workers: true,
            },
            tuning,
        )
        .await
        .expect("application builds");
        let bound = app.local_addr().expect("bound");
        let address = format!("http://{bound}");
        let state = app.state().clone();
        let owner_email =
            format!("owner-{}@example.com", wagate::ids::random_token(6)).to_lowercase();
        let created = wagate::tenants::create(
            &state.store,
            wagate::tenants::NewTenantInput {
                name: "Acme".into(),
                email: owner_email.clone(),
                password: SecretString::from(OWNER_PASSWORD.to_owned()),
            },
        )
        .await
        .expect("tenant created");
        let (shutdown, server) = run(app);
        Self {
            db,
            address,
            client: reqwest::Client::new(),
            emulator,
            state,
            tenant_id: created.tenant_id,
            api_key: secrecy::ExposeSecret::expose_secret(&created.api_key).to_owned(),
            owner_email,
            data_dir,
            database_url,
            shutdown: Some(shutdown),
            server: Some(server),
            settings: Settings {
                listen: bound,
                ..started_with
            },
            tuning,
            _database: database,
        }
    }

    /// Stops the server (as SIGTERM would) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
        }
    }

    /// Stops the server and starts it again on the same address and database, as a restart in
    /// production would; the state (and the tenant) are the ones already stored.
    pub async fn restart(&mut self) {
        self.stop().await;
        let app = Application::build(
            self.settings.clone(),
            Roles {
                http: true,
                workers: true,
            },
            self.tuning,
        )
        .await
        .expect("application builds again");
        self.state = app.state().clone();
        let (shutdown, server) = run(app);
        self.shutdown = Some(shutdown);
        self.server = Some(server);
    }

    /// Another tenant on the same server, with its own API key.
    pub async fn other_tenant(&self) -> (String, String) {
        let other = self.other_owner().await;
        (other.tenant_id, other.api_key)
    }

    /// Another tenant on the same server, with its owner's sign-in email (password
    /// [`OWNER_PASSWORD`]) and its API key.
    pub async fn other_owner(&self) -> OtherOwner {
        let email = format!("other-{}@example.com", wagate::ids::random_token(6)).to_lowercase();
        let created = wagate::tenants::create(
            &self.state.store,
            wagate::tenants::NewTenantInput {
                name: "Other".into(),
                email: email.clone(),
                password: SecretString::from(OWNER_PASSWORD.to_owned()),
            },
        )
        .await
        .expect("tenant created");
        OtherOwner {
            tenant_id: created.tenant_id,
            api_key: secrecy::ExposeSecret::expose_secret(&created.api_key).to_owned(),
            email,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(&self.api_key, path).await
    }

    pub async fn get_as(&self, api_key: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(api_key)
            .send()
            .await
            .expect("request");
        json_of(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_as(&self.api_key, reqwest::Method::POST, path, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_as(&self.api_key, reqwest::Method::PATCH, path, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send_as(&self.api_key, reqwest::Method::DELETE, path, None)
            .await
    }

    pub async fn send_as(
        &self,
        api_key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.expect("request")).await
    }

    /// Registers a new number in the emulator and connects it through the API; Meta (the
    /// emulator) then delivers that number's webhooks to the connection's URL.
    pub async fn connect_number(&self) -> ConnectedNumber {
        self.connect_number_as(&self.api_key).await
    }

    pub async fn connect_number_as(&self, api_key: &str) -> ConnectedNumber {
        let number = self.register_number();
        let (status, connection) = self
            .send_as(
                api_key,
                reqwest::Method::POST,
                "/api/v1/connections",
                Some(json!({
                    "access_token": number.access_token,
                    "phone_number_id": number.phone_number_id,
                    "app_secret": number.app_secret,
                    "waba_id": TEST_WABA,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{connection}");
        let webhook_url = connection["webhook_url"]
            .as_str()
            .expect("webhook_url")
            .to_owned();
        self.emulator
            .update_phone_number(
                &number.phone_number_id,
                emulator::PhoneNumberUpdate {
                    webhook_url: Some(Some(webhook_url)),
                    ..Default::default()
                },
            )
            .expect("emulator update");
        ConnectedNumber {
            connection,
            ..number
        }
    }

    /// A number known to the emulator but not connected in wagate.
    pub fn register_number(&self) -> ConnectedNumber {
        let seq = NUMBER_SEQ.fetch_add(1, Ordering::Relaxed);
        let phone_number_id = format!("10654035{seq}");
        let access_token = format!("EAAG{}", wagate::ids::random_token(24));
        let app_secret = hex_secret();
        self.emulator
            .register_phone_number(PhoneNumberRegistration {
                phone_number_id: phone_number_id.clone(),
                waba_id: TEST_WABA.into(),
                display_phone_number: format!("1555{seq}"),
                verified_name: "Acme Shoes".into(),
                access_token: access_token.clone(),
                app_secret: app_secret.clone(),
                webhook_url: None,
                ..Default::default()
            })
            .expect("emulator registration");
        ConnectedNumber {
            connection: Value::Null,
            phone_number_id,
            access_token,
            app_secret,
        }
    }

    /// Posts a body to a connection's webhook URL signed with its app secret, like Meta does.
    pub async fn post_signed(&self, number: &ConnectedNumber, body: &Value) -> StatusCode {
        let bytes = serde_json::to_vec(body).expect("json");
        let signature = cloudapi::signature::sign(number.app_secret.as_bytes(), &bytes);
        self.client
            .post(number.webhook_url())
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(bytes)
            .send()
            .await
            .expect("webhook post")
            .status()
    }

    /// Calls the emulator's admin API (Meta's side of the test) with JSON.
    pub async fn meta_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.emulator.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.expect("emulator admin call")).await
    }

    /// Puts a template on Meta's side (the emulator) for the test WABA, as if made in WhatsApp
    /// Manager; answers it with its Meta id.
    pub async fn meta_has_template(&self, template: Value) -> Value {
        let mut template = template;
        template["waba_id"] = json!(TEST_WABA);
        let (status, body) = self
            .meta_admin(reqwest::Method::POST, "/admin/templates", Some(template))
            .await;
        assert!(status.is_success(), "{status} {body}");
        body
    }

    /// Waits until the connection's templates have been synced once (connecting queues a sync).
    pub async fn wait_templates_synced(&self, number: &ConnectedNumber) {
        let id = number.id().to_owned();
        eventually(Duration::from_secs(10), || async {
            self.state
                .store
                .connection_by_id(&id)
                .await
                .ok()
                .flatten()
                .is_some_and(|c| c.templates_synced_at.is_some())
        })
        .await;
    }

    /// Makes the connection's last template sync two minutes old, as if it happened a while ago.
    pub async fn age_template_sync(&self, number: &ConnectedNumber) {
        let mut tx = self.state.store.begin().await.expect("begin");
        sqlx::query(
            "UPDATE connections SET templates_synced_at = templates_synced_at - 120000 WHERE id = $1",
        )
        .bind(number.id())
        .execute(&mut *tx)
        .await
        .expect("age the sync");
        tx.commit().await.expect("commit");
    }

    /// How many raw bodies the inbox holds (in any state).
    pub async fn inbox_rows(&self) -> i64 {
        self.state
            .store
            .inbox_row_count()
            .await
            .expect("count inbox")
    }

    /// Waits until the processor has applied everything stored so far.
    pub async fn wait_processed(&self) {
        eventually(Duration::from_secs(10), || async {
            self.state.store.inbox_pending_count().await.ok() == Some(0)
        })
        .await;
    }

    /// The tenant's messages, newest first (up to 200).
    pub async fn messages(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/v1/messages?limit=200{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Polls `check` until it holds or `within` passes (then the test fails).
pub async fn eventually<F, Fut>(within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn test_master_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

fn hex_secret() -> String {
    let token = wagate::ids::random_token(16);
    token
        .bytes()
        .map(|b| format!("{:02x}", b))
        .collect::<String>()[..32]
        .to_owned()
}

/// A webhook shaped like Meta's (one entry, one change) for a number, with the given value parts.
pub fn messages_webhook(phone_number_id: &str, value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({"display_phone_number": "15550783881", "phone_number_id": phone_number_id});
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
    })
}

/// An inbound text message object.
pub fn text_message(from: &str, wamid: &str, body: &str, timestamp: i64) -> Value {
    json!({
        "from": from,
        "id": wamid,
        "timestamp": timestamp.to_string(),
        "type": "text",
        "text": {"body": body}
    })
}

pub fn unique_wamid() -> String {
    format!("wamid.test{}", wagate::ids::random_token(18))
}

pub fn now_secs() -> i64 {
    wagate::clock::now_ms() / 1000
}
