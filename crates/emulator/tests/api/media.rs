//! Media: uploads checked as Meta checks them, download URLs that need the owner's token and
//! expire, customers' files, and sends by media id.

use anyhow::{Context, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use emulator::{
    CustomerMessage, FaultKind, FaultSpec, GraphEndpoint, MediaSeed, PhoneNumberRegistration,
    PhoneNumberUpdate,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const OTHER_NUMBER: &str = "200000000000001";
const OTHER_TOKEN: &str = "EAAother-tenant";

/// The test number, and a second number of another tenant.
async fn two_numbers(webhook_url: Option<String>) -> anyhow::Result<emulator::RunningEmulator> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(webhook_url))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: OTHER_NUMBER.into(),
        access_token: OTHER_TOKEN.into(),
        ..registration(None)
    })?;
    Ok(meta)
}

/// A small JPEG-looking file: the bytes do not matter to Meta's checks, only type and size.
fn photo() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..10_000u32).map(|n| (n % 251) as u8));
    bytes
}

/// `POST /v24.0/{PHONE_NUMBER_ID}/media` as Meta's curl example does it.
async fn upload(
    meta: &emulator::RunningEmulator,
    bytes: Vec<u8>,
    mime_type: &str,
) -> anyhow::Result<(u16, Value)> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("upload.bin")
        .mime_str(mime_type)?;
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .part("file", part);
    let response = http()
        .post(format!("{}/v24.0/{PHONE_NUMBER_ID}/media", meta.base_url()))
        .bearer_auth(ACCESS_TOKEN)
        .multipart(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn media_info(
    meta: &emulator::RunningEmulator,
    media_id: &str,
    token: &str,
) -> anyhow::Result<(u16, Value)> {
    let response = http()
        .get(format!("{}/v24.0/{media_id}", meta.base_url()))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// Downloads a URL with an optional token: the status, the content type and the bytes.
async fn download(url: &str, token: Option<&str>) -> anyhow::Result<(u16, String, Bytes)> {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, content_type, response.bytes().await?))
}

fn url_of(info: &Value) -> anyhow::Result<String> {
    info["url"]
        .as_str()
        .map(str::to_owned)
        .context("the answer has a url")
}

#[tokio::test]
async fn an_upload_can_be_downloaded_with_the_token_and_has_the_same_bytes_and_sha256()
-> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let bytes = photo();
    let (status, uploaded) = upload(&meta, bytes.clone(), "image/jpeg").await?;
    assert_eq!(status, 200, "{uploaded}");
    let id = uploaded["id"].as_str().context("an id")?.to_owned();
    assert_eq!(uploaded, json!({ "id": id }), "shaped like Meta's answer");

    let (status, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    assert_eq!(status, 200, "{info}");
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let url = url_of(&info)?;
    assert_eq!(
        info.to_string(),
        json!({
            "messaging_product": "whatsapp", "url": url, "mime_type": "image/jpeg",
            "sha256": sha256, "file_size": bytes.len(), "id": id,
        })
        .to_string()
    );
    ensure!(
        url.starts_with(&format!("{}/media-download/", meta.base_url())),
        "{url}"
    );

    let response = http().get(&url).bearer_auth(ACCESS_TOKEN).send().await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/jpeg")
    );
    let downloaded = response.bytes().await?;
    assert_eq!(downloaded.as_ref(), bytes.as_slice());
    assert_eq!(hex::encode(Sha256::digest(&downloaded)), sha256);

    let (_, again) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    assert_ne!(url_of(&again)?, url, "each call issues a fresh URL");
    let calls = meta.calls(Some(PHONE_NUMBER_ID), Some(GraphEndpoint::MediaDownload));
    assert_eq!(calls.len(), 1, "the download is in the call log");
    assert_eq!(calls[0].http_status, Some(200));
    Ok(())
}

#[tokio::test]
async fn a_download_without_the_owners_token_is_refused_with_401() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let (_, uploaded) = upload(&meta, photo(), "image/png").await?;
    let id = uploaded["id"].as_str().context("an id")?.to_owned();
    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    let url = url_of(&info)?;

    for token in [None, Some("EAAwrong"), Some(OTHER_TOKEN)] {
        let (status, _, _) = download(&url, token).await?;
        assert_eq!(status, 401, "{token:?}");
    }
    let (status, _, _) = download(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200);

    // Another tenant's token cannot read the media's info either.
    let (status, body) = media_info(&meta, &id, OTHER_TOKEN).await?;
    assert_eq!(status, 400);
    assert_eq!(meta_error(&body, 100)?["error_subcode"], 33);
    let (status, body) = media_info(&meta, &id, "EAAwrong").await?;
    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    Ok(())
}

#[tokio::test]
async fn an_expired_url_answers_404_and_a_new_get_gives_a_working_one() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let (_, uploaded) = upload(&meta, photo(), "image/jpeg").await?;
    let id = uploaded["id"].as_str().context("an id")?.to_owned();

    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    let first = url_of(&info)?;
    let (status, expired) = post_json(
        &format!("{}/admin/media/{id}/expire-urls", meta.base_url()),
        None,
        &json!({}),
    )
    .await?;
    assert_eq!((status, expired), (200, json!({"expired": 1})));
    let (status, _, body) = download(&first, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 404);
    ensure!(body.len() < 100, "a short plain body");

    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    let (status, _, bytes) = download(&url_of(&info)?, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200);
    assert_eq!(bytes.as_ref(), photo().as_slice());

    // A number's URLs live as long as it says.
    meta.update_phone_number(
        PHONE_NUMBER_ID,
        PhoneNumberUpdate {
            media_url_ttl_ms: Some(50),
            ..Default::default()
        },
    )?;
    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, _, _) = download(&url_of(&info)?, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 404, "expired after its TTL");
    assert_eq!(
        meta.expire_media_urls(&id)?,
        1,
        "only the URL issued before the change, for 5 minutes, was still valid"
    );

    let (status, _, _) = download(
        &format!("{}/media-download/never-issued", meta.base_url()),
        Some(ACCESS_TOKEN),
    )
    .await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test]
async fn oversize_and_unsupported_uploads_get_131053_saying_what_is_wrong() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let five_mb = 5 * 1024 * 1024;
    let cases = [
        (vec![0u8; five_mb + 1], "image/jpeg", "5 MB"),
        (vec![0u8; 500 * 1024 + 1], "image/webp", "500 KB"),
        (vec![0u8; 10], "image/gif", "image/gif"),
        (vec![0u8; 10], "application/zip", "application/zip"),
    ];
    for (bytes, mime_type, mention) in cases {
        let (status, answer) = upload(&meta, bytes, mime_type).await?;
        assert_eq!(status, 400, "{mime_type}: {answer}");
        let error = meta_error(&answer, 131053)?;
        assert_eq!(error["message"], "(#131053) Media upload error");
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(mention), "{mime_type}: {details}");
    }
    let (status, answer) = upload(&meta, vec![0u8; five_mb], "image/jpeg").await?;
    assert_eq!(status, 200, "exactly the limit is fine: {answer}");
    assert_eq!(meta.media_list(Some(PHONE_NUMBER_ID)).len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_upload_without_messaging_product_or_file_gets_code_100() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let url = format!("{}/v24.0/{PHONE_NUMBER_ID}/media", meta.base_url());
    let file = || {
        reqwest::multipart::Part::bytes(photo())
            .file_name("a.jpg")
            .mime_str("image/jpeg")
    };
    let forms = [
        (
            reqwest::multipart::Form::new().part("file", file()?),
            "messaging_product",
        ),
        (
            reqwest::multipart::Form::new().text("messaging_product", "whatsapp"),
            "file",
        ),
    ];
    for (form, mention) in forms {
        let response = http()
            .post(&url)
            .bearer_auth(ACCESS_TOKEN)
            .multipart(form)
            .send()
            .await?;
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await?;
        let error = meta_error(&answer, 100)?;
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(mention), "{details}");
    }
    let response = http()
        .post(&url)
        .bearer_auth(ACCESS_TOKEN)
        .json(&json!({"messaging_product": "whatsapp"}))
        .send()
        .await?;
    assert_eq!(response.status(), 400, "not multipart");
    let response = http().post(&url).bearer_auth("EAAwrong").send().await?;
    assert_eq!(response.status(), 401);
    Ok(())
}

#[tokio::test]
async fn wagates_client_uploads_reads_and_downloads_media() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let client = cloudapi::GraphClient::new(cloudapi::GraphConfig {
        base_url: reqwest::Url::parse(&meta.base_url())?,
        ..Default::default()
    })?;
    let token = SecretString::from(ACCESS_TOKEN);
    let bytes = Bytes::from_static(b"%PDF-1.4 a receipt");
    let uploaded = client
        .upload_media(
            &token,
            PHONE_NUMBER_ID,
            bytes.clone(),
            "application/pdf",
            "receipt.pdf",
        )
        .await?;
    let info = client.get_media(&token, &uploaded.id).await?;
    assert_eq!(info.mime_type, "application/pdf");
    assert_eq!(info.file_size.as_u64(), Some(18));
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&bytes)));
    let downloaded = client.download_media(&token, &info.url, 1024).await?;
    assert_eq!(downloaded, bytes);
    assert_eq!(
        meta.media(&uploaded.id).and_then(|m| m.filename),
        Some("receipt.pdf".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn deleted_media_is_gone() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let (_, uploaded) = upload(&meta, photo(), "image/jpeg").await?;
    let id = uploaded["id"].as_str().context("an id")?.to_owned();
    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    let url = url_of(&info)?;

    let response = http()
        .delete(format!("{}/v24.0/{id}", meta.base_url()))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), 400, "not the other tenant's to delete");
    let response = http()
        .delete(format!("{}/v24.0/{id}", meta.base_url()))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await?, json!({"success": true}));

    let (status, body) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    assert_eq!(status, 400);
    assert_eq!(meta_error(&body, 100)?["error_subcode"], 33);
    let (status, _, _) = download(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 404);
    assert!(meta.media(&id).is_none());
    Ok(())
}

#[tokio::test]
async fn an_inbound_image_with_bytes_arrives_with_metas_base64_sha256_and_can_be_downloaded()
-> anyhow::Result<()> {
    let receiver = Receiver::start([]).await?;
    let meta = two_numbers(Some(receiver.url.clone())).await?;
    let bytes = photo();
    let (status, receipt) = post_json(
        &format!("{}/admin/customers/messages", meta.base_url()),
        None,
        &json!({
            "phone_number_id": PHONE_NUMBER_ID, "from": CUSTOMER, "type": "image",
            "image": {"data": STANDARD.encode(&bytes), "mime_type": "image/jpeg", "caption": "Taj Mahal"},
        }),
    )
    .await?;
    assert_eq!(status, 202, "{receipt}");
    let media_id = receipt["media_id"]
        .as_str()
        .context("a media id")?
        .to_owned();

    let received = receiver.wait_for(1).await?;
    let webhook: Value = serde_json::from_slice(&received[0].body)?;
    let image = &webhook["entry"][0]["changes"][0]["value"]["messages"][0]["image"];
    let digest = STANDARD.encode(Sha256::digest(&bytes));
    assert_eq!(
        image.to_string(),
        json!({"caption": "Taj Mahal", "mime_type": "image/jpeg", "sha256": digest, "id": media_id})
            .to_string(),
        "Meta's keys in the order of its example, and no data"
    );

    let (status, info) = media_info(&meta, &media_id, ACCESS_TOKEN).await?;
    assert_eq!(status, 200, "{info}");
    let (status, _, downloaded) = download(&url_of(&info)?, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200);
    assert_eq!(downloaded.as_ref(), bytes.as_slice());

    // The Rust side, with a voice note.
    let receipt = meta
        .customer_writes(
            CustomerMessage::media(
                PHONE_NUMBER_ID,
                CUSTOMER,
                "audio",
                b"OggS".to_vec(),
                "audio/ogg; codecs=opus",
            )
            .with_voice(true),
        )
        .await?;
    let media_id = receipt.media_id.context("a media id")?;
    assert_eq!(
        meta.media_content(&media_id),
        Some(Bytes::from_static(b"OggS"))
    );
    let record = meta.wait_delivered(receipt.delivery_id, WAIT).await?;
    let audio = &record.body_json()?["entry"][0]["changes"][0]["value"]["messages"][0]["audio"];
    assert_eq!(audio["voice"], true);
    assert_eq!(audio["id"], media_id.as_str());
    ensure!(audio.get("data").is_none(), "{audio}");
    Ok(())
}

#[tokio::test]
async fn an_inbound_object_with_an_id_and_no_data_passes_through() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let image: Value =
        json!({"mime_type": "image/jpeg", "sha256": "abc=", "id": "1487611172367485"});
    let receipt = meta
        .customer_writes(CustomerMessage {
            message_type: "image".into(),
            content: image.clone(),
            ..CustomerMessage::text(PHONE_NUMBER_ID, CUSTOMER, "")
        })
        .await?;
    assert_eq!(receipt.media_id, None);
    let record = meta
        .delivery(receipt.delivery_id)
        .context("the delivery exists")?;
    assert_eq!(
        record.body_json()?["entry"][0]["changes"][0]["value"]["messages"][0]["image"],
        image
    );
    Ok(())
}

#[tokio::test]
async fn sending_a_media_id_the_number_does_not_have_gives_131053() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    customer_writes_now(&meta).await?;
    let elsewhere = meta.add_media(MediaSeed {
        phone_number_id: OTHER_NUMBER.into(),
        bytes: Bytes::from_static(b"x"),
        mime_type: "image/png".into(),
        ..Default::default()
    })?;
    let image = |id: &str| json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image", "image": {"id": id}});
    for id in ["1479537139650973", elsewhere.id.as_str()] {
        let (status, answer) = send(&meta, &image(id)).await?;
        assert_eq!(status, 400, "{answer}");
        let error = meta_error(&answer, 131053)?;
        let details = error["error_data"]["details"].as_str().unwrap_or_default();
        ensure!(details.contains(id), "{details}");
    }
    assert!(meta.sent_messages(None).is_empty());

    let (_, uploaded) = upload(&meta, photo(), "image/jpeg").await?;
    let id = uploaded["id"].as_str().context("an id")?;
    let (status, answer) = send(&meta, &image(id)).await?;
    assert_eq!(status, 200, "{answer}");
    let link = json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image",
                      "image": {"link": "https://example.com/a.jpg"}});
    let (status, answer) = send(&meta, &link).await?;
    assert_eq!(status, 200, "links pass: {answer}");
    Ok(())
}

#[tokio::test]
async fn a_fault_on_media_download_answers_the_fault_and_then_the_download_works()
-> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let (_, uploaded) = upload(&meta, photo(), "image/jpeg").await?;
    let id = uploaded["id"].as_str().context("an id")?.to_owned();
    let (_, info) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    let url = url_of(&info)?;

    let (status, _) = post_json(
        &format!("{}/admin/faults", meta.base_url()),
        None,
        &json!({"endpoint": "media_download", "phone_number_id": PHONE_NUMBER_ID, "kind": "internal_error"}),
    )
    .await?;
    assert_eq!(status, 201);
    let response = http().get(&url).bearer_auth(ACCESS_TOKEN).send().await?;
    assert_eq!(response.status(), 500);
    meta_error(&response.json::<Value>().await?, 1)?;
    let (status, _, bytes) = download(&url, Some(ACCESS_TOKEN)).await?;
    assert_eq!(status, 200, "the fault answered one call");
    assert_eq!(bytes.as_ref(), photo().as_slice());

    // The info call is the `media` endpoint.
    meta.add_fault(FaultSpec {
        endpoint: Some(GraphEndpoint::Media),
        ..FaultSpec::kind(FaultKind::ServiceUnavailable)
    })?;
    let (status, body) = media_info(&meta, &id, ACCESS_TOKEN).await?;
    assert_eq!(status, 503);
    meta_error(&body, 2)?;
    let logged = meta.calls(None, Some(GraphEndpoint::MediaDownload));
    assert_eq!(logged.len(), 2);
    ensure!(logged[0].fault_id.is_some() && logged[1].fault_id.is_none());
    Ok(())
}

#[tokio::test]
async fn the_admin_api_seeds_shows_and_serves_media() -> anyhow::Result<()> {
    let meta = two_numbers(None).await?;
    let base = meta.base_url();
    let (status, seeded) = post_json(
        &format!("{base}/admin/media"),
        None,
        &json!({"phone_number_id": PHONE_NUMBER_ID, "data": STANDARD.encode(b"hello"),
                "mime_type": "text/plain", "filename": "hello.txt", "id": "1037543291543636"}),
    )
    .await?;
    assert_eq!(status, 201, "{seeded}");
    assert_eq!(seeded["id"], "1037543291543636");
    assert_eq!(seeded["sha256"], hex::encode(Sha256::digest(b"hello")));
    assert_eq!(seeded["file_size"], 5);
    assert_eq!(seeded["filename"], "hello.txt");
    ensure!(seeded["created_at_ms"].is_u64(), "{seeded}");

    let (status, shown) = get_json(&format!("{base}/admin/media/1037543291543636")).await?;
    assert_eq!((status, &shown), (200, &seeded));
    let (status, listed) = get_json(&format!(
        "{base}/admin/media?phone_number_id={PHONE_NUMBER_ID}"
    ))
    .await?;
    assert_eq!(status, 200);
    assert_eq!(listed["data"], json!([seeded]));
    let (status, listed) = get_json(&format!(
        "{base}/admin/media?phone_number_id={OTHER_NUMBER}"
    ))
    .await?;
    assert_eq!((status, listed), (200, json!({"data": []})));
    let content = http()
        .get(format!("{base}/admin/media/1037543291543636/content"))
        .send()
        .await?;
    assert_eq!(content.status(), 200);
    assert_eq!(content.bytes().await?.as_ref(), b"hello");

    let (status, answer) = post_json(
        &format!("{base}/admin/media"),
        None,
        &json!({"phone_number_id": PHONE_NUMBER_ID, "data": "AAAA", "mime_type": "text/plain", "id": "1037543291543636"}),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = post_json(
        &format!("{base}/admin/media"),
        None,
        &json!({"phone_number_id": PHONE_NUMBER_ID, "data": "%%%", "mime_type": "text/plain"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "data");
    let (status, _) = get_json(&format!("{base}/admin/media/999")).await?;
    assert_eq!(status, 404);
    Ok(())
}
