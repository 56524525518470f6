//! The webhook path from raw bytes to stored rows: the `X-Hub-Signature-256` check, the parser,
//! and the server's own inbox processor applying the body to a SQLite store.
//!
//! Input: byte 0 holds flags (bit 0: sign the body correctly; bit 1: the body arrived on the
//! first connection's own URL rather than the platform URL), byte 1 picks the signature bit to
//! flip when signing wrongly, and the rest is the body. Properties checked on every input: nothing
//! panics; a correct signature is accepted and a wrong or missing one refused; a parsed body
//! serializes to JSON that parses back to the same value; an accepted body is applied without
//! leaving its inbox row for a retry; and applying the same body again stores nothing new.
#![no_main]

use std::sync::{Arc, OnceLock};

use cloudapi::Notification;
use cloudapi::signature::{self, SignatureError};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use wagate::clock::now_ms;
use wagate::config::DatabaseUrl;
use wagate::inbound::processor::{Processor, ProcessorConfig};
use wagate::realtime::EventBus;
use wagate::store::connections::{ConnectionRow, STATUS_CONNECTED};
use wagate::store::inbox::InboxAppend;
use wagate::store::tenants::NewTenant;
use wagate::store::{PoolSizes, Store};

/// The app secret every body is signed under; a fixed test value, not a real one.
const APP_SECRET: &[u8] = b"fuzzing-app-secret";

/// The phone number ids and business account the shared examples use, so that seeds route.
const OWN_PHONE: &str = "106540352242922";
const OTHER_PHONE: &str = "1122334455667";
const OTHER_WABA: &str = "102290129340398";

/// Built once per process: the database, its migrations and the tenant cost far more than an input.
struct Harness {
    runtime: Runtime,
    store: Store,
    processor: Processor,
    /// The connection whose own URL a body may arrive on (flag bit 1).
    own_connection: String,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (store, own_connection) = runtime.block_on(open_store());
        let processor = Processor::new(
            store.clone(),
            EventBus::new(16),
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            ProcessorConfig::default(),
        );
        Harness {
            runtime,
            store,
            processor,
            own_connection,
        }
    })
}

/// A fresh SQLite store (in shared memory when there is one: the inbox commits are fsynced) with
/// one tenant and two connected numbers: one without a business account, one with it.
async fn open_store() -> (Store, String) {
    let base = std::path::Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("wagate-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("wagate.db").display()));
    let store = Store::connect(&url, PoolSizes::default())
        .await
        .expect("open the store");
    store.migrate().await.expect("migrate the store");
    let now = now_ms();
    let tenant_id = wagate::ids::new_id();
    store
        .create_tenant(&NewTenant {
            tenant_id: &tenant_id,
            name: "Fuzz",
            user_id: &wagate::ids::new_id(),
            email: "fuzz@example.com",
            password_hash: "not-a-hash",
            api_key_id: &wagate::ids::new_id(),
            api_key_hash: "not-a-hash",
            api_key_prefix: "fuzz",
            now,
        })
        .await
        .expect("create the tenant");
    let connection = |phone: &str, waba: Option<&str>, auto_reply: bool| ConnectionRow {
        id: wagate::ids::new_id(),
        tenant_id: tenant_id.clone(),
        phone_number_id: phone.to_owned(),
        waba_id: waba.map(str::to_owned),
        display_phone_number: phone.to_owned(),
        verified_name: "Fuzz".to_owned(),
        quality_rating: None,
        connection_key: wagate::ids::new_id(),
        access_token: None,
        app_secret: None,
        verify_token: None,
        status: STATUS_CONNECTED.to_owned(),
        status_reason: None,
        auto_reply,
        throughput_per_second: 80,
        templates_synced_at: None,
        created_at: now,
        updated_at: now,
    };
    // The own number answers automatically, so redelivered messages also exercise the reply jobs.
    let own = connection(OWN_PHONE, None, true);
    let other = connection(OTHER_PHONE, Some(OTHER_WABA), false);
    for row in [&own, &other] {
        store
            .insert_connection(row)
            .await
            .expect("insert a connection");
    }
    (store, own.id)
}

/// Everything a webhook can add to: applying a body a second time must leave all of it unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    messages: i64,
    statuses: i64,
    contacts: i64,
    conversations: i64,
    unread: i64,
    media: i64,
    jobs: i64,
    templates: i64,
    priced: i64,
}

async fn stored(store: &Store) -> Stored {
    let count = async |sql: &'static str| -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(store.reader())
            .await
            .expect("count rows")
    };
    Stored {
        messages: count("SELECT COUNT(*) FROM messages").await,
        statuses: count("SELECT COUNT(*) FROM statuses").await,
        contacts: count("SELECT COUNT(*) FROM contacts").await,
        conversations: count("SELECT COUNT(*) FROM conversations").await,
        unread: count("SELECT COALESCE(SUM(unread_count), 0) FROM conversations").await,
        media: count("SELECT COUNT(*) FROM media").await,
        jobs: count("SELECT COUNT(*) FROM jobs").await,
        templates: count("SELECT COUNT(*) FROM templates").await,
        priced: count("SELECT COALESCE(SUM(messages), 0) FROM usage_daily").await,
    }
}

/// Stores the body in the inbox as the webhook route does, then lets the processor apply it.
async fn deliver(harness: &Harness, connection_id: Option<&str>, body: &[u8]) {
    harness
        .store
        .append_to_inbox(&[InboxAppend {
            connection_id: connection_id.map(str::to_owned),
            body: bytes::Bytes::copy_from_slice(body),
            received_at: now_ms(),
        }])
        .await
        .expect("append to the inbox");
    while harness
        .processor
        .process_batch()
        .await
        .expect("the store is available")
        > 0
    {}
    // A row left pending failed to apply and waits for a retry: a body the server cannot store.
    let pending = harness
        .store
        .inbox_pending_count()
        .await
        .expect("count pending rows");
    assert_eq!(pending, 0, "the body was not applied: {:?}", lossy(body));
}

fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fuzz_target!(|input: &[u8]| {
    let [flags, flip, body @ ..] = input else {
        return;
    };
    let sign_correctly = flags & 1 == 1;
    let own_url = flags & 2 == 2;

    let good = signature::sign(APP_SECRET, body);
    assert_eq!(
        signature::verify(APP_SECRET, body, Some(good.as_bytes())),
        Ok(())
    );
    assert_eq!(
        signature::verify(APP_SECRET, body, None),
        Err(SignatureError::Missing)
    );
    let header = if sign_correctly {
        good
    } else {
        let mut digest = signature::hmac_sha256(APP_SECRET, body);
        digest[usize::from(flip / 8)] ^= 1 << (flip % 8);
        format!("sha256={}", hex_lower(&digest))
    };
    let checked = signature::verify(APP_SECRET, body, Some(header.as_bytes()));
    if !sign_correctly {
        assert_eq!(checked, Err(SignatureError::Mismatch));
    }

    if let Ok(notification) = Notification::parse(body) {
        let again = serde_json::to_vec(&notification).expect("a notification serializes");
        let reparsed = Notification::parse(&again).expect("serialized JSON parses");
        assert_eq!(
            reparsed, notification,
            "serializing changed the notification"
        );
    }

    // The route stores nothing whose signature failed; only accepted bodies reach the inbox.
    if checked.is_err() {
        return;
    }
    let harness = harness();
    let connection_id = own_url.then_some(harness.own_connection.as_str());
    harness.runtime.block_on(async {
        deliver(harness, connection_id, body).await;
        let before = stored(&harness.store).await;
        deliver(harness, connection_id, body).await;
        let after = stored(&harness.store).await;
        assert_eq!(before, after, "a redelivery stored something again");
    });
});

/// Read by AddressSanitizer at start-up. The bundled SQLite has two file-level arrays of one name
/// (`aiOff`), which ASan's one-definition check takes for a clash and aborts on before any input.
#[unsafe(no_mangle)]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"detect_odr_violation=0".as_ptr()
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
