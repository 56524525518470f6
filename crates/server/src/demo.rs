//! `wagate demo`: everything a newcomer needs in one process, with no Meta account. The server
//! runs on the embedded database, the project's Cloud API emulator plays Meta on a free port, a
//! demo tenant has a connected number, and a few simulated customers write in now and then and
//! read what they are sent.
//!
//! The demo's data lives in `$WAGATE_DATA_DIR/demo` and starts afresh on every run: the emulator
//! (Meta's side) forgets everything when it stops, so old conversations could not be answered.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use emulator::{CustomerMessage, PhoneNumberRegistration, PhoneNumberUpdate, RetryPolicy};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::config::{DatabaseUrl, Settings};
use crate::embedded::EmbeddedServer;
use crate::ids::random_token;

/// The demo's business number (the one in Meta's example payloads).
const PHONE_NUMBER_ID: &str = "106540352242922";
const WABA_ID: &str = "102290129340398";
const DISPLAY_NUMBER: &str = "15550783881";
const DEMO_EMAIL: &str = "demo@example.com";

/// The simulated customers: wa_id, profile name, and what they say in turn.
const CUSTOMERS: &[(&str, &str, &[&str])] = &[
    (
        "5511987654321",
        "Ana Souza",
        &[
            "Oi! Do you ship to São Paulo?",
            "How long does delivery take?",
            "Great, thanks. Can I pay on delivery?",
        ],
    ),
    (
        "919876543210",
        "Rahul Mehta",
        &[
            "Hi, my order #4821 has not arrived yet.",
            "It was supposed to come on Monday.",
            "Okay, please send me the tracking link.",
        ],
    ),
    (
        "4915112345678",
        "Lena Fischer",
        &[
            "Hallo, are you open on Saturday?",
            "Do I need an appointment?",
            "Perfect, see you then!",
        ],
    ),
];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds between two messages from the simulated customers (0: only their first messages).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub customer_every_secs: u64,
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    let demo_dir = settings.data_dir.join("demo");
    reset_dir(&demo_dir)?;
    crate::embedded::with_emulator(RetryPolicy::meta_like(), async |meta| {
        run_with_emulator(settings, &demo_dir, &args, meta).await
    })
    .await
}

async fn run_with_emulator(
    settings: Settings,
    demo_dir: &Path,
    args: &DemoArgs,
    meta: &emulator::RunningEmulator,
) -> anyhow::Result<()> {
    // Fresh credentials on every run: the emulator holds them only while it runs.
    let access_token = format!("EAAdemo{}", random_token(32));
    let app_secret = random_token(24);
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: PHONE_NUMBER_ID.into(),
        waba_id: WABA_ID.into(),
        display_phone_number: DISPLAY_NUMBER.into(),
        verified_name: "Demo Shop".into(),
        access_token: access_token.clone(),
        app_secret: app_secret.clone(),
        // Customers read what they are sent, a moment after it arrives.
        auto_statuses: vec!["sent".into(), "delivered".into(), "read".into()],
        auto_status_delay_ms: 1_500,
        ..Default::default()
    })
    .context("cannot register the demo number with the emulator")?;
    for template in demo_templates() {
        meta.add_template(template)
            .context("cannot add the demo's templates to the emulator")?;
    }

    let settings = demo_settings(settings, demo_dir, &meta.base_url())?;
    let server = EmbeddedServer::start(settings).await?;
    let (addr, store) = (server.addr, server.store.clone());
    let setup = async {
        let password = random_token(12);
        let tenant = crate::tenants::create(
            &store,
            crate::tenants::NewTenantInput {
                name: "Demo Shop".into(),
                email: DEMO_EMAIL.into(),
                password: SecretString::from(password.clone()),
            },
        )
        .await
        .context("cannot create the demo tenant")?;
        let base = format!("http://{addr}");
        let connection = connect(&base, &tenant.api_key, &access_token, &app_secret).await?;
        meta.update_phone_number(
            PHONE_NUMBER_ID,
            PhoneNumberUpdate {
                webhook_url: Some(Some(connection.webhook_url.clone())),
                ..Default::default()
            },
        )
        .context("cannot point the emulator at the demo's webhook URL")?;
        anyhow::Ok((password, tenant, connection))
    };
    let (password, tenant, connection) = match setup.await {
        Ok(done) => done,
        Err(error) => {
            server.stop_logged().await;
            return Err(error);
        }
    };

    print_welcome(
        addr,
        &password,
        tenant.api_key.expose_secret(),
        &connection.id,
        &meta.base_url(),
    );

    let every = Duration::from_secs(args.customer_every_secs);
    tokio::select! {
        () = crate::cli::shutdown_signal() => {}
        () = simulate_customers(meta, every) => crate::cli::shutdown_signal().await,
    }
    eprintln!("stopping the demo");
    server.stop().await
}

/// The user's settings, on the demo's own SQLite database, with the emulator as Meta, a master key
/// that lives only as long as the demo (its data is reset on the next run anyway), no limit on
/// API calls or webhooks, and nothing shared with other processes.
fn demo_settings(
    mut settings: Settings,
    demo_dir: &Path,
    graph_base: &str,
) -> anyhow::Result<Settings> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    settings.data_dir = demo_dir.to_path_buf();
    settings.database_url =
        DatabaseUrl::Sqlite(format!("sqlite://{}", demo_dir.join("wagate.db").display()));
    settings.redis_url = None;
    settings.master_key = Some(SecretString::from(STANDARD.encode(key.as_slice())));
    settings.previous_master_keys = None;
    settings.graph_api_base =
        url::Url::parse(graph_base).context("the emulator's base URL is not a URL")?;
    settings.meta_app_secret = None;
    settings.meta_verify_token = None;
    // A newcomer's scripts and the simulated customers run on this machine only; sign-in keeps
    // its limit, since the demo prints a real login.
    settings.rate_limits = crate::config::RequestLimits {
        api: None,
        webhook: None,
        ..settings.rate_limits
    };
    Ok(settings)
}

fn reset_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot reset the demo directory {}", dir.display()));
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))
}

struct DemoConnection {
    id: String,
    webhook_url: String,
}

/// Connects the demo number through the REST API, as a user would.
async fn connect(
    base: &str,
    api_key: &SecretString,
    access_token: &str,
    app_secret: &str,
) -> anyhow::Result<DemoConnection> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")?;
    let response = client
        .post(format!("{base}/api/v1/connections"))
        .bearer_auth(api_key.expose_secret())
        .json(&json!({
            "access_token": access_token,
            "phone_number_id": PHONE_NUMBER_ID,
            "app_secret": app_secret,
            "waba_id": WABA_ID,
        }))
        .send()
        .await
        .context("POST /api/v1/connections failed")?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("POST /api/v1/connections did not answer JSON")?;
    if status != reqwest::StatusCode::CREATED {
        bail!("POST /api/v1/connections answered {status}: {body}");
    }
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the new connection has no {name}"))
    };
    Ok(DemoConnection {
        id: field("id")?,
        webhook_url: field("webhook_url")?,
    })
}

/// The photo the first customer sends with her first message, so the inbox shows a picture.
const DEMO_PHOTO: &[u8] = include_bytes!("../../../testdata/media/photo.jpg");

/// The templates of the demo's account besides Meta's `hello_world`, for the inbox's template
/// picker (the only way to write once a customer's 24 hours have passed).
fn demo_templates() -> Vec<emulator::TemplateSeed> {
    let template =
        |name: &str, category: &str, format: &str, components: Vec<Value>| emulator::TemplateSeed {
            waba_id: WABA_ID.into(),
            name: name.into(),
            language: "en".into(),
            category: category.into(),
            parameter_format: Some(format.into()),
            components,
            ..Default::default()
        };
    vec![
        template(
            "order_update",
            "UTILITY",
            "POSITIONAL",
            vec![
                json!({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["4821"]}}),
                json!({"type": "BODY", "text": "Hi {{1}}, your order ships on {{2}}.", "example": {"body_text": [["Rahul", "Monday"]]}}),
                json!({"type": "FOOTER", "text": "Demo Shop"}),
                json!({"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}", "example": ["https://shop.example/track/4821"]}]}),
            ],
        ),
        template(
            "appointment_reminder",
            "UTILITY",
            "NAMED",
            vec![
                json!({"type": "BODY", "text": "Hello {{name}}, see you on {{day}} at {{time}}.",
                    "example": {"body_text_named_params": [
                        {"param_name": "name", "example": "Lena"},
                        {"param_name": "day", "example": "Saturday"},
                        {"param_name": "time", "example": "10:00"}]}}),
                json!({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Confirm"}, {"type": "QUICK_REPLY", "text": "Reschedule"}]}),
            ],
        ),
    ]
}

/// Each customer writes once at the start, then one of them every `every`, in turn, each going
/// through their lines and starting over.
async fn simulate_customers(meta: &emulator::RunningEmulator, every: Duration) {
    let mut next_line = vec![0usize; CUSTOMERS.len()];
    let mut turn = 0usize;
    loop {
        let first_round = turn < CUSTOMERS.len();
        let who = turn % CUSTOMERS.len();
        let (wa_id, name, lines) = CUSTOMERS[who];
        let line = lines[next_line[who] % lines.len()];
        next_line[who] += 1;
        turn += 1;
        let written = meta
            .customer_writes(CustomerMessage {
                phone_number_id: PHONE_NUMBER_ID.into(),
                from: wa_id.into(),
                name: Some(name.into()),
                message_type: "text".into(),
                content: json!({ "body": line }),
                context: None,
                referral: None,
                timestamp: None,
            })
            .await;
        if let Err(error) = written {
            tracing::warn!(%error, "a simulated customer could not write");
        }
        if turn == 1 {
            let photo = CustomerMessage::media(
                PHONE_NUMBER_ID,
                wa_id,
                "image",
                DEMO_PHOTO.to_vec(),
                "image/jpeg",
            )
            .with_caption("Do you have these in blue?");
            if let Err(error) = meta
                .customer_writes(CustomerMessage {
                    name: Some(name.into()),
                    ..photo
                })
                .await
            {
                tracing::warn!(%error, "a simulated customer could not send a photo");
            }
        }
        let pause = if first_round {
            Duration::from_millis(300)
        } else if every.is_zero() {
            return;
        } else {
            every
        };
        tokio::time::sleep(pause).await;
    }
}

fn print_welcome(
    addr: SocketAddr,
    password: &str,
    api_key: &str,
    connection_id: &str,
    meta_url: &str,
) {
    let base = format!("http://{addr}");
    let (to, _, _) = CUSTOMERS[0];
    println!(
        r#"
wagate demo is running: the Cloud API emulator at {meta_url} plays Meta.
Its data is in the demo directory and starts afresh on every run.

  Dashboard  {base}/
  Login      {DEMO_EMAIL}
  Password   {password}
  API key    {api_key}

Simulated customers write in now and then, and read what you send them.
See their conversations:

  curl -s {base}/api/v1/conversations -H 'Authorization: Bearer {api_key}'

Answer one:

  curl -s {base}/api/v1/messages \
    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \
    -d '{{"connection_id":"{connection_id}","to":"+{to}","type":"text","text":{{"body":"Hello from wagate"}}}}'

Press Ctrl-C to stop."#
    );
}
