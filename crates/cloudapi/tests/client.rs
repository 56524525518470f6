//! The Graph client against a canned local HTTP server: paths, the bearer header, Meta's error
//! envelope, paging, and how transport failures are classified.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloudapi::business_profile::{BusinessProfileUpdate, Vertical};
use cloudapi::client::{GraphClient, GraphConfig, GraphError, TransportKind};
use cloudapi::error::ErrorClass;
use cloudapi::phone_number::MESSAGING_LIMIT_FIELD;
use cloudapi::send::SendMessageRequest;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

const TOKEN: &str = "EAAJB-test-token-never-shown";

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the fake server answers.
struct Canned {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
}

fn answer(status: u16, body: Value) -> Canned {
    Canned {
        status,
        body: body.to_string().into_bytes(),
        delay: Duration::ZERO,
    }
}

/// A minimal HTTP/1.1 server on a free local port: one request per connection, answered by
/// `respond`, every request recorded. The crate has no web framework, so this stays a test helper.
struct FakeGraph {
    base_url: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeGraph {
    async fn start(respond: impl Fn(&Seen) -> Canned + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond = Arc::new(respond);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (respond, log) = (Arc::clone(&respond), Arc::clone(&log));
                tokio::spawn(async move {
                    let mut stream = stream;
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let canned = respond(&request);
                    log.lock().unwrap().push(request);
                    tokio::time::sleep(canned.delay).await;
                    write_response(&mut stream, &canned).await;
                });
            }
        });
        Self { base_url, seen }
    }

    fn client(&self, timeout: Duration) -> GraphClient {
        GraphClient::new(GraphConfig {
            base_url: self.base_url.clone(),
            version: "v24.0".to_owned(),
            timeout,
            transfer_timeout: timeout,
            connect_timeout: Duration::from_secs(2),
            user_agent: "wagate-test".to_owned(),
        })
        .unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (
        request_line.next()?.to_owned(),
        request_line.next()?.to_owned(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

async fn write_response(stream: &mut TcpStream, canned: &Canned) {
    let head = format!(
        "HTTP/1.1 {} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        canned.status,
        canned.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&canned.body).await;
    let _ = stream.shutdown().await;
}

fn token() -> SecretString {
    SecretString::from(TOKEN)
}

fn assert_no_token(error: &GraphError) {
    assert!(!format!("{error}").contains(TOKEN));
    assert!(!format!("{error:?}").contains(TOKEN));
}

#[tokio::test]
async fn send_message_posts_json_to_the_versioned_path_with_the_bearer_token() {
    let graph = FakeGraph::start(|seen| match seen.method.as_str() {
        "GET" => answer(
            200,
            json!({"id": "106540352242922", "display_phone_number": "+1 555-555-5555", "verified_name": "Jaspers Market",
                   "quality_rating": "GREEN"}),
        ),
        _ if seen.json().get("status").is_some() => answer(200, json!({"success": true})),
        _ => answer(
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                   "messages": [{"id": "wamid.SENT"}]}),
        ),
    })
    .await;
    let client = graph.client(Duration::from_secs(5));
    let request = SendMessageRequest::text("+16505551234", "hello").reply_to("wamid.IN");

    let answer = client
        .send_message(&token(), "106540352242922", &request)
        .await
        .unwrap();
    assert_eq!(answer.wamid(), Some("wamid.SENT"));
    client
        .mark_read(&token(), "106540352242922", "wamid.IN", true)
        .await
        .unwrap();
    let phone = client
        .get_phone_number(&token(), "106540352242922")
        .await
        .unwrap();
    assert_eq!(phone.verified_name.as_deref(), Some("Jaspers Market"));

    let seen = graph.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/v24.0/106540352242922/messages")
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen[0].json(), serde_json::to_value(&request).unwrap());
    assert_eq!(
        seen[1].json(),
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN", "typing_indicator": {"type": "text"}})
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].target.as_str()),
        ("GET", "/v24.0/106540352242922")
    );
    assert_eq!(
        seen[2].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[tokio::test]
async fn business_profile_calls_ask_for_every_field_and_send_only_the_set_ones() {
    let graph = FakeGraph::start(|seen| match (seen.method.as_str(), seen.target.as_str()) {
        ("POST", _) => answer(200, json!({"success": true})),
        (_, target) if target.contains("whatsapp_business_profile") => answer(
            200,
            json!({"data": [{"business_profile": {"about": "Open late", "vertical": "RETAIL",
                   "messaging_product": "whatsapp"}}]}),
        ),
        _ => answer(
            200,
            json!({"whatsapp_business_manager_messaging_limit": "TIER_250", "id": "106540352242922"}),
        ),
    })
    .await;
    let client = graph.client(Duration::from_secs(5));
    let update = BusinessProfileUpdate {
        about: Some("Open late".to_owned()),
        websites: Some(vec!["https://example.com".to_owned()]),
        ..Default::default()
    };

    client
        .update_business_profile(&token(), "106540352242922", &update)
        .await
        .unwrap();
    let profile = client
        .get_business_profile(&token(), "106540352242922")
        .await
        .unwrap();
    let number = client
        .get_phone_number_fields(&token(), "106540352242922", &[MESSAGING_LIMIT_FIELD])
        .await
        .unwrap();

    assert_eq!(profile.about.as_deref(), Some("Open late"));
    assert_eq!(profile.vertical, Some(Vertical::Retail));
    assert_eq!(
        number.whatsapp_business_manager_messaging_limit.as_deref(),
        Some("TIER_250")
    );
    let seen = graph.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/v24.0/106540352242922/whatsapp_business_profile")
    );
    assert_eq!(
        seen[0].json(),
        json!({"messaging_product": "whatsapp", "about": "Open late", "websites": ["https://example.com"]})
    );
    assert_eq!(
        seen[1].target,
        "/v24.0/106540352242922/whatsapp_business_profile?fields=about%2Caddress%2Cdescription%2Cemail%2Cprofile_picture_url%2Cwebsites%2Cvertical"
    );
    assert_eq!(
        seen[2].target,
        "/v24.0/106540352242922?fields=whatsapp_business_manager_messaging_limit"
    );
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
    );
}

#[tokio::test]
async fn metas_error_envelope_is_decoded_and_classified_by_its_code() {
    let graph = FakeGraph::start(|seen| match seen.target.as_str() {
        "/v24.0/1/messages" => answer(
            400,
            json!({"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
                   "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours have passed."},
                   "fbtrace_id": "AbC"}}),
        ),
        "/v24.0/2/messages" => answer(
            401,
            json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "x"}}),
        ),
        _ => Canned {
            status: 502,
            body: b"<html>Bad Gateway</html>".to_vec(),
            delay: Duration::ZERO,
        },
    })
    .await;
    let client = graph.client(Duration::from_secs(5));
    let request = SendMessageRequest::text("16505551234", "hi");

    let window = client
        .send_message(&token(), "1", &request)
        .await
        .unwrap_err();
    let GraphError::Meta { http_status, error } = &window else {
        panic!("expected Meta's envelope, got {window:?}")
    };
    assert_eq!(
        (*http_status, error.code, error.fbtrace_id.as_deref()),
        (400, 131047, Some("AbC"))
    );
    assert_eq!(error.details(), Some("More than 24 hours have passed."));
    assert_eq!(window.class(), ErrorClass::ServiceWindowClosed);
    assert!(!window.outcome_unknown());

    let expired = client
        .send_message(&token(), "2", &request)
        .await
        .unwrap_err();
    assert_eq!(expired.class(), ErrorClass::CredentialsRejected);
    assert_no_token(&expired);

    let gateway = client
        .send_message(&token(), "3", &request)
        .await
        .unwrap_err();
    let GraphError::UnexpectedResponse {
        http_status,
        body_excerpt,
    } = &gateway
    else {
        panic!("expected an unexpected answer, got {gateway:?}")
    };
    assert_eq!(
        (*http_status, body_excerpt.as_str()),
        (502, "<html>Bad Gateway</html>")
    );
    assert_eq!(gateway.class(), ErrorClass::RetryLater);
}

#[tokio::test]
async fn listing_all_templates_follows_the_cursors_to_the_last_page() {
    let graph = FakeGraph::start(|seen| {
        let page = |ids: &[&str], after: &str, more: bool| {
            let data: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "name": format!("t{id}"), "status": "APPROVED"}))
                .collect();
            let mut paging = json!({"cursors": {"before": "b", "after": after}});
            if more {
                paging["next"] =
                    json!("https://graph.facebook.com/v24.0/55/message_templates?after=elsewhere");
            }
            answer(200, json!({"data": data, "paging": paging}))
        };
        match seen.target.as_str() {
            "/v24.0/55/message_templates?limit=2" => page(&["1", "2"], "c1", true),
            "/v24.0/55/message_templates?limit=2&after=c1" => page(&["3", "4"], "c2", true),
            "/v24.0/55/message_templates?limit=2&after=c2" => page(&["5"], "c3", false),
            other => answer(
                404,
                json!({"error": {"code": 100, "message": format!("no route {other}")}}),
            ),
        }
    })
    .await;
    let client = graph.client(Duration::from_secs(5));

    let templates = client.list_all_templates(&token(), "55", 2).await.unwrap();
    let ids: Vec<&str> = templates
        .iter()
        .map(|template| template.id.as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    assert_eq!(
        graph.seen().len(),
        3,
        "the `next` URL's host is never called"
    );
}

#[tokio::test]
async fn media_is_uploaded_as_multipart_and_downloads_are_capped() {
    let graph = FakeGraph::start(|seen| match (seen.method.as_str(), seen.target.as_str()) {
        ("POST", "/v24.0/106540352242922/media") => answer(200, json!({"id": "1037543291543636"})),
        ("GET", "/v24.0/1037543291543636") => answer(
            200,
            json!({"url": "http://placeholder/", "mime_type": "image/jpeg", "sha256": "abc", "file_size": 10,
                   "id": "1037543291543636", "messaging_product": "whatsapp"}),
        ),
        ("GET", "/lookaside/file") => Canned {
            status: 200,
            body: b"0123456789".to_vec(),
            delay: Duration::ZERO,
        },
        _ => answer(404, json!({"error": {"code": 100, "message": "no route"}})),
    })
    .await;
    let client = graph.client(Duration::from_secs(5));

    let uploaded = client
        .upload_media(
            &token(),
            "106540352242922",
            Bytes::from_static(b"JPEGDATA"),
            "image/jpeg",
            "photo.jpg",
        )
        .await
        .unwrap();
    assert_eq!(uploaded.id, "1037543291543636");
    let upload = &graph.seen()[0];
    assert!(
        upload
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data")
    );
    let form = String::from_utf8_lossy(&upload.body);
    assert!(
        form.contains("name=\"messaging_product\"\r\n\r\nwhatsapp"),
        "{form}"
    );
    assert!(form.contains("filename=\"photo.jpg\""), "{form}");
    assert!(form.contains("JPEGDATA"), "{form}");

    let info = client
        .get_media(&token(), "1037543291543636")
        .await
        .unwrap();
    assert_eq!(info.file_size.as_u64(), Some(10));

    let media_url = graph.base_url.join("lookaside/file").unwrap();
    let bytes = client
        .download_media(&token(), media_url.as_str(), 10)
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"0123456789");
    assert_eq!(
        graph.seen()[2].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let refused = client
        .download_media(&token(), media_url.as_str(), 9)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, GraphError::BodyTooLarge { max_bytes: 9, .. }),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_timeout_may_have_reached_meta_but_a_refused_connection_did_not() {
    let slow = FakeGraph::start(|_| Canned {
        status: 200,
        body: b"{}".to_vec(),
        delay: Duration::from_secs(5),
    })
    .await;
    let timed_out = slow
        .client(Duration::from_millis(300))
        .send_message(&token(), "1", &SendMessageRequest::text("1", "hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            timed_out,
            GraphError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{timed_out:?}"
    );
    assert!(timed_out.outcome_unknown());
    assert_eq!(timed_out.class(), ErrorClass::RetryLater);
    assert_no_token(&timed_out);

    // A port that was free a moment ago: nothing listens, so the connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let client = GraphClient::new(GraphConfig {
        base_url: Url::parse(&format!("http://{address}/")).unwrap(),
        ..GraphConfig::default()
    })
    .unwrap();
    let refused = client
        .send_message(&token(), "1", &SendMessageRequest::text("1", "hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            GraphError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(!refused.outcome_unknown());
    assert_eq!(refused.class(), ErrorClass::RetryLater);
}
