//! Graph endpoints: answers and errors as Meta gives them.

use anyhow::ensure;
use emulator::PhoneNumberRegistration;
use serde_json::{Value, json};

use crate::helpers::*;

async fn get(url: String, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

#[tokio::test]
async fn the_phone_number_is_answered_with_the_right_token() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    let (status, body) = get(
        format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()),
        Some(ACCESS_TOKEN),
    )
    .await?;

    assert_eq!(status, 200);
    assert_eq!(body["id"], PHONE_NUMBER_ID);
    assert_eq!(body["verified_name"], "Acme Support");
    assert_eq!(body["display_phone_number"], DISPLAY_PHONE_NUMBER);
    assert_eq!(body["quality_rating"], "GREEN");
    Ok(())
}

#[tokio::test]
async fn any_graph_version_is_accepted() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    for version in ["v21.0", "v25.0", "v19.3"] {
        let (status, _) = get(
            format!("{}/{version}/{PHONE_NUMBER_ID}", meta.base_url()),
            Some(ACCESS_TOKEN),
        )
        .await?;
        assert_eq!(status, 200, "{version}");
    }
    Ok(())
}

#[tokio::test]
async fn fields_limit_the_answer_to_those_fields_and_the_id() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    let url = format!(
        "{}/v24.0/{PHONE_NUMBER_ID}?fields=quality_rating,verified_name,not_a_field",
        meta.base_url()
    );
    let (status, body) = get(url, Some(ACCESS_TOKEN)).await?;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"quality_rating": "GREEN", "verified_name": "Acme Support", "id": PHONE_NUMBER_ID})
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_code_190_and_http_401() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    let (status, body) = get(
        format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()),
        Some("EAAwrong"),
    )
    .await?;

    assert_eq!(status, 401);
    let error = meta_error(&body, 190)?;
    assert_eq!(
        error["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );
    assert_eq!(error["type"], "OAuthException");
    ensure!(
        error.get("error_subcode").is_none(),
        "a wrong token has no subcode: {body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_token_is_refused_with_code_190_and_http_401() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    let (status, body) = get(format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()), None).await?;

    assert_eq!(status, 401);
    meta_error(&body, 190)?;
    Ok(())
}

#[tokio::test]
async fn an_unknown_phone_number_id_answers_code_100_subcode_33() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    let (status, body) = get(
        format!("{}/v24.0/999999999999999", meta.base_url()),
        Some(ACCESS_TOKEN),
    )
    .await?;

    assert_eq!(status, 400);
    let error = meta_error(&body, 100)?;
    assert_eq!(error["error_subcode"], 33);
    assert_eq!(error["type"], "GraphMethodException");
    assert_eq!(
        error["message"],
        "Unsupported get request. Object with ID '999999999999999' does not exist, cannot be loaded due to \
         missing permissions, or does not support this operation. Please read the Graph API documentation at \
         https://developers.facebook.com/docs/graph-api"
    );
    Ok(())
}

#[tokio::test]
async fn another_numbers_token_cannot_read_this_number() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;
    meta.register_phone_number(PhoneNumberRegistration {
        phone_number_id: "200000000000001".into(),
        access_token: "EAAother-tenant".into(),
        ..registration(None)
    })?;

    let (status, body) = get(
        format!("{}/v24.0/{PHONE_NUMBER_ID}", meta.base_url()),
        Some("EAAother-tenant"),
    )
    .await?;

    assert_eq!(status, 400);
    assert_eq!(meta_error(&body, 100)?["error_subcode"], 33);
    Ok(())
}

#[tokio::test]
async fn unknown_paths_answer_a_graph_error() -> anyhow::Result<()> {
    let meta = spawn_emulator().await?;
    meta.register_phone_number(registration(None))?;

    for path in ["/v24.0", "/nonsense/123", "/v24.0/123/unknown_edge/more"] {
        let (status, body) = get(format!("{}{path}", meta.base_url()), Some(ACCESS_TOKEN)).await?;
        assert_eq!(status, 400, "{path}");
        meta_error(&body, 2500)?;
    }
    Ok(())
}
