//! Request rate limits through the real server: the API per key, sign-in per account and per
//! address, webhooks per connection, and budgets shared by two servers through Redis.
//!
//! The Redis test uses `WAGATE_TEST_REDIS_URL`; without it the test is skipped with a printed
//! reason, except under `CI=true`, where it must run.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};
use wagate::app::{Application, Roles, Tuning};
use wagate::config::{RequestLimits, Settings};
use wagate::limits::PerMinute;

use crate::helpers::*;

/// Runs a test on SQLite, and on PostgreSQL when it is there, with `limits` for requests.
macro_rules! with_limits_on_both_databases {
    ($limits:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    body(TestApp::spawn_with(Db::Sqlite, |s| s.rate_limits = $limits).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if postgres_url().is_some() {
                        body(TestApp::spawn_with(Db::Postgres, |s| s.rate_limits = $limits).await)
                            .await;
                    }
                }
            }
        )*
    };
}

/// The production defaults: 100 API calls and 10 sign-ins a minute; webhooks lower than the
/// default so a test can reach the limit quickly.
const LIMITS: RequestLimits = RequestLimits {
    api: Some(RequestLimits::DEFAULT_API),
    signin: Some(RequestLimits::DEFAULT_SIGNIN),
    webhook: Some(PerMinute::new(200)),
};

/// One rate-limit header as a number.
fn header_number(headers: &HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        .to_str()
        .expect("ascii header")
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {headers:?}"))
}

/// A client whose requests come from `127.0.0.n` (all of 127/8 is this machine).
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// One sign-in attempt from `client`, through the real form: answers status, headers and page.
async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (StatusCode, HeaderMap, String) {
    let form = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("sign-in page");
    assert_eq!(form.status(), StatusCode::OK);
    let cookie = form
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with("wagate_signin="))
        .expect("the form's cookie")
        .to_owned();
    let page = form.text().await.expect("page");
    let marker = "name=\"form_token\" value=\"";
    let start = page.find(marker).expect("form token") + marker.len();
    let token = page[start..].split('"').next().expect("token").to_owned();
    let response = client
        .post(app.url("/login"))
        .header(COOKIE, cookie)
        .form(&[
            ("email", email),
            ("password", password),
            ("form_token", &token),
        ])
        .send()
        .await
        .expect("sign-in post");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.expect("page"))
}

fn assert_rate_limited(status: StatusCode, headers: &HeaderMap, body: &Value, limit: u64) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["details"]["limit"], limit, "{body}");
    let retry_after = header_number(headers, RETRY_AFTER.as_str());
    assert!(retry_after >= 1, "{headers:?}");
    assert_eq!(
        body["error"]["details"]["retry_after_seconds"], retry_after,
        "{body}"
    );
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("retry in {retry_after} second")),
        "{message}"
    );
    assert_eq!(header_number(headers, "x-ratelimit-limit"), limit);
    assert_eq!(header_number(headers, "x-ratelimit-remaining"), 0);
    let reset = header_number(headers, "x-ratelimit-reset");
    assert!(
        reset >= retry_after && reset <= 60,
        "reset in {reset} s: {headers:?}"
    );
}

with_limits_on_both_databases! {
    LIMITS;

    async fn the_101st_api_call_in_a_minute_is_refused_while_another_key_still_passes(app) {
        let started = Instant::now();
        let statuses: Vec<StatusCode> = futures::stream::iter(0..100)
            .map(|_| async {
                let response = app
                    .client
                    .get(app.url("/api/v1/unread-count"))
                    .bearer_auth(&app.api_key)
                    .send()
                    .await
                    .expect("request");
                assert!(response.headers().contains_key("x-ratelimit-remaining"));
                response.status()
            })
            .buffer_unordered(16)
            .collect()
            .await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        // One request comes back every 0.6 s: on a slow machine a few more may pass first.
        let mut admitted = 100u64;
        let (status, headers, body) = loop {
            let response = app
                .client
                .get(app.url("/api/v1/unread-count"))
                .bearer_auth(&app.api_key)
                .send()
                .await
                .expect("request");
            let headers = response.headers().clone();
            let (status, body) = json_of(response).await;
            if status != StatusCode::OK {
                break (status, headers, body);
            }
            admitted += 1;
            assert!(admitted < 120, "never refused");
        };
        let refills = (started.elapsed().as_secs_f64() / 0.6).floor() as u64;
        assert!(admitted <= 100 + refills, "{admitted} passed in {:?}", started.elapsed());
        assert_rate_limited(status, &headers, &body, 100);
        assert_eq!(header_number(&headers, RETRY_AFTER.as_str()), 1, "one request back in 0.6 s");

        let (_, other_key) = app.other_tenant().await;
        let response = app
            .client
            .get(app.url("/api/v1/unread-count"))
            .bearer_auth(&other_key)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "another key has its own budget");
        assert_eq!(header_number(response.headers(), "x-ratelimit-remaining"), 99);
        assert_eq!(header_number(response.headers(), "x-ratelimit-limit"), 100);
    }

    async fn remaining_counts_down_with_each_call_and_reset_counts_up(app) {
        let started = Instant::now();
        let mut remaining = Vec::new();
        let mut resets = Vec::new();
        for _ in 0..5 {
            let response = app
                .client
                .get(app.url("/api/v1/connections"))
                .bearer_auth(&app.api_key)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            assert!(!response.headers().contains_key(RETRY_AFTER), "only a 429 says when to retry");
            assert_eq!(header_number(response.headers(), "x-ratelimit-limit"), 100);
            remaining.push(header_number(response.headers(), "x-ratelimit-remaining"));
            resets.push(header_number(response.headers(), "x-ratelimit-reset"));
        }
        assert_eq!(remaining[0], 99, "the first call of an idle key");
        if started.elapsed() < Duration::from_millis(550) {
            assert_eq!(remaining, [99, 98, 97, 96, 95]);
        } else {
            assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "{remaining:?}");
        }
        // 0.6 s of budget per call, rounded up: 1, 2, 2, 3, 3 seconds until all 100 are back.
        assert_eq!(resets[0], 1, "{resets:?}");
        assert!(resets.windows(2).all(|w| w[1] >= w[0]) && resets[4] <= 3, "{resets:?}");
    }

    async fn calls_without_valid_credentials_are_limited_per_address(app) {
        let response = app
            .client
            .get(app.url("/api/v1/connections"))
            .bearer_auth("wg_not_a_key")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header_number(response.headers(), "x-ratelimit-remaining"), 99);
        let response = app
            .client
            .get(app.url("/api/v1/connections"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header_number(response.headers(), "x-ratelimit-remaining"),
            98,
            "both counted against this address"
        );
        let (status, _) = app.get("/api/v1/connections").await;
        assert_eq!(status, StatusCode::OK, "the key is counted apart from the address");
        let health = app.client.get(app.url("/healthz")).send().await.expect("request");
        assert!(!health.headers().contains_key("x-ratelimit-limit"), "operations are not limited");
    }

    async fn sign_in_is_limited_per_account_with_headers_and_retry_after(app) {
        // Ten wrong passwords for one account, each from its own address.
        for n in 0..10u8 {
            let (status, headers, _) =
                sign_in(&app, &client_from(10 + n), &app.owner_email, "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
            assert_eq!(header_number(&headers, "x-ratelimit-limit"), 10);
            assert_eq!(
                header_number(&headers, "x-ratelimit-remaining"),
                u64::from(9 - n),
                "the account's budget is the tighter one"
            );
        }
        let fresh = client_from(30);
        let (status, headers, page) = sign_in(&app, &fresh, &app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
        // One attempt comes back every 6 s; the attempts above took some of that.
        let retry_after = header_number(&headers, RETRY_AFTER.as_str());
        assert!((1..=6).contains(&retry_after), "{headers:?}");
        assert!(
            page.contains(&format!("Too many sign-in attempts. Try again in {retry_after} second")),
            "{page}"
        );
        assert_eq!(header_number(&headers, "x-ratelimit-remaining"), 0);
        assert!((55..=60).contains(&header_number(&headers, "x-ratelimit-reset")), "{headers:?}");
        let other = app.other_owner().await;
        let (status, headers, _) = sign_in(&app, &fresh, &other.email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "another account from that address signs in");
        assert!(!headers.contains_key(RETRY_AFTER));
        assert_eq!(header_number(&headers, "x-ratelimit-remaining"), 9);
    }

    async fn sign_in_is_limited_per_address_whatever_the_account(app) {
        let client = client_from(1);
        for n in 0..10u8 {
            let email = format!("nobody{n}@example.com");
            let (status, _, _) = sign_in(&app, &client, &email, "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
        }
        let (status, headers, page) = sign_in(&app, &client, &app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "this address used its ten");
        assert!(page.contains("Too many sign-in attempts"), "{page}");
        assert!(header_number(&headers, RETRY_AFTER.as_str()) >= 1);
        assert_eq!(header_number(&headers, "x-ratelimit-limit"), 10);
        let (status, _, _) =
            sign_in(&app, &client_from(2), &app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "the same account from another address");
    }

    async fn a_webhook_burst_under_the_limit_is_all_stored_and_the_next_is_refused(app) {
        let number = app.connect_number().await;
        let bodies: Vec<Value> = (0..200)
            .map(|n| {
                messages_webhook(
                    &number.phone_number_id,
                    json!({"messages": [text_message("447700900123", &unique_wamid(), &format!("burst {n}"), now_secs())]}),
                )
            })
            .collect();
        let statuses: Vec<StatusCode> = futures::stream::iter(&bodies)
            .map(|body| app.post_signed(&number, body))
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        assert_eq!(app.inbox_rows().await, 200);

        // Unsigned, so a pass would be 401: the 429 comes first.
        let response = app
            .client
            .post(number.webhook_url())
            .json(&bodies[0])
            .send()
            .await
            .expect("webhook post");
        let headers = response.headers().clone();
        let (status, body) = json_of(response).await;
        let limit = 200;
        if status == StatusCode::UNAUTHORIZED {
            // One came back (0.3 s each at 200 a minute) while the burst was being stored.
            assert!(header_number(&headers, "x-ratelimit-remaining") < 5, "{headers:?}");
        } else {
            assert_rate_limited(status, &headers, &body, limit);
        }
        let verify = app
            .client
            .get(format!("{}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", number.webhook_url()))
            .send()
            .await
            .expect("verification");
        assert_eq!(verify.status(), StatusCode::FORBIDDEN, "verification is not limited");
        let other = app.connect_number().await;
        let status = app.post_signed(&other, &bodies[1]).await;
        assert_eq!(status, StatusCode::OK, "another connection has its own budget");
    }
}

mod the_platform_webhook_url_is_limited_per_sending_address {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = TestApp::spawn_with(Db::Sqlite, |s| {
            s.rate_limits.webhook = Some(PerMinute::new(3));
            s.meta_app_secret = Some("platform-secret".to_owned().into());
        })
        .await;
        let post = |client: reqwest::Client| {
            let url = app.url("/webhooks/whatsapp");
            async move {
                client
                    .post(url)
                    .json(&json!({"object": "whatsapp_business_account", "entry": []}))
                    .send()
                    .await
                    .expect("webhook post")
            }
        };
        for remaining in [2, 1, 0] {
            let response = post(client_from(1)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "unsigned");
            assert_eq!(
                header_number(response.headers(), "x-ratelimit-remaining"),
                remaining
            );
        }
        let response = post(client_from(1)).await;
        let headers = response.headers().clone();
        let (status, body) = json_of(response).await;
        assert_rate_limited(status, &headers, &body, 3);
        let response = post(client_from(2)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "another sender has its own budget"
        );
    }
}

/// The Redis server to share budgets through, or `None` (with a printed reason).
fn redis_url() -> Option<String> {
    match std::env::var("WAGATE_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but WAGATE_TEST_REDIS_URL is not set: the Redis tests must run");
            }
            eprintln!("skipping the shared-limit test: set WAGATE_TEST_REDIS_URL to run it");
            None
        }
    }
}

/// A second server on the first one's database and Redis, as a second process would be.
async fn second_server(settings: &Settings) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut settings = settings.clone();
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.public_url_given = false;
    let app = Application::build(
        settings,
        Roles {
            http: true,
            workers: false,
        },
        Tuning::default(),
    )
    .await
    .expect("the second server builds");
    let address = format!("http://{}", app.local_addr().expect("bound"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (address, stop)
}

async fn limits_are_shared_by_two_servers_on_one_redis(db: Db) {
    let Some(redis) = redis_url() else { return };
    let app = TestApp::spawn_with(db, |s| {
        s.redis_url = Some(redis);
        s.rate_limits.api = Some(PerMinute::new(10));
    })
    .await;
    assert!(app.state.limiter.is_shared());
    let (second, _stop) = second_server(&app.state.settings).await;
    let call = |base: &str| {
        app.client
            .get(format!("{base}/api/v1/unread-count"))
            .bearer_auth(&app.api_key)
            .send()
    };
    let started = Instant::now();
    let mut remaining = Vec::new();
    for n in 0..10 {
        let base = if n % 2 == 0 { &app.address } else { &second };
        let response = call(base).await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "call {n}");
        remaining.push(header_number(response.headers(), "x-ratelimit-remaining"));
    }
    // One call comes back every 6 s at 10 a minute.
    if started.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            remaining,
            [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
            "one budget for both servers"
        );
        for base in [&app.address, &second] {
            let response = call(base).await.expect("request");
            let headers = response.headers().clone();
            let (status, body) = json_of(response).await;
            assert_rate_limited(status, &headers, &body, 10);
        }
    } else {
        let refills = started.elapsed().as_secs() / 6;
        assert!(
            remaining[9] <= refills,
            "one budget for both servers: {remaining:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_by_two_servers_on_one_redis_sqlite() {
    limits_are_shared_by_two_servers_on_one_redis(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_by_two_servers_on_one_redis_postgres() {
    if postgres_url().is_some() {
        limits_are_shared_by_two_servers_on_one_redis(Db::Postgres).await;
    }
}
