//! An async client for the Graph API endpoints the Cloud API needs, with every failure sorted into
//! Meta's own error, a transport failure (and whether the request may have reached Meta), or an
//! answer that made no sense.
//!
//! The client holds no credentials: every call takes the access token, so one client serves every
//! tenant. The token goes only into the `Authorization` header, which is marked sensitive.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::business_profile::{
    BUSINESS_PROFILE_FIELDS, BusinessProfile, BusinessProfileResponse, BusinessProfileUpdate,
    BusinessProfileUpdateRequest,
};
use crate::error::{ErrorClass, MetaError, MetaErrorEnvelope, classify_response};
use crate::media::{MediaInfo, UploadedMedia};
use crate::phone_number::PhoneNumber;
use crate::send::{
    MESSAGING_PRODUCT, MarkReadRequest, SendMessageRequest, SendMessageResponse, SuccessResponse,
};
use crate::templates::{
    MessageTemplate, TemplateCreateRequest, TemplateCreateResponse, TemplatePage,
};

/// JSON answers larger than this are refused rather than buffered: no Graph answer comes near it.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
/// How much of an unexpected body an error keeps, for the log.
const EXCERPT_BYTES: usize = 512;
/// A templates listing that has not ended after this many pages is looping.
const MAX_TEMPLATE_PAGES: usize = 1000;

/// Where and how to reach the Graph API.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// `https://graph.facebook.com`, or the emulator's address; may carry a path prefix.
    pub base_url: Url,
    /// `v24.0`: the first segment of every path.
    pub version: String,
    /// For a whole call, connection to last byte.
    pub timeout: Duration,
    /// For a media upload or download, connection to last byte: files run to 100 MB.
    pub transfer_timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_url: Url::parse("https://graph.facebook.com")
                .unwrap_or_else(|_| unreachable!("a valid literal URL")),
            version: "v24.0".to_owned(),
            timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("wagate-cloudapi/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// What went wrong on the way to or from Meta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection was made: the request never left.
    Connect,
    /// The call ran out of time; Meta may have acted on it.
    Timeout,
    /// The connection broke or the answer could not be read; Meta may have acted on it.
    Other,
}

/// A failed Graph API call. Never holds the access token.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with its error envelope.
    #[error("the Graph API answered HTTP {http_status}: {error}")]
    Meta {
        http_status: u16,
        /// Boxed to keep `Result<_, GraphError>` small on the happy path.
        error: Box<MetaError>,
    },
    /// No answer came back.
    #[error("the Graph API could not be reached ({kind:?}): {message}")]
    Transport {
        kind: TransportKind,
        message: String,
    },
    /// An answer came back but was not what the endpoint returns (not JSON, or the wrong shape).
    #[error("unexpected answer from the Graph API (HTTP {http_status}): {body_excerpt}")]
    UnexpectedResponse {
        http_status: u16,
        body_excerpt: String,
    },
    /// The answer was larger than the caller allowed.
    #[error("the answer (HTTP {http_status}) is larger than {max_bytes} bytes")]
    BodyTooLarge { http_status: u16, max_bytes: u64 },
    /// The call could not be made as asked (an id or URL that cannot go in a request).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl GraphError {
    /// What the caller should do about this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Meta { http_status, error } => classify_response(*http_status, Some(error.code)),
            Self::Transport { .. } => ErrorClass::RetryLater,
            Self::UnexpectedResponse { http_status, .. } => classify_response(*http_status, None),
            Self::BodyTooLarge { .. } | Self::InvalidRequest(_) => ErrorClass::Permanent,
        }
    }

    /// Whether Meta may have acted on the request even though the call failed, so that sending it
    /// again could send a message twice.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { kind, .. } => *kind != TransportKind::Connect,
            // A success whose body we could not read, or a gateway that gave up waiting on Meta.
            Self::UnexpectedResponse { http_status, .. } => {
                (200..300).contains(http_status) || *http_status == 504
            }
            Self::Meta { .. } | Self::BodyTooLarge { .. } | Self::InvalidRequest(_) => false,
        }
    }

    /// Meta's error, if Meta gave one.
    pub fn meta_error(&self) -> Option<&MetaError> {
        match self {
            Self::Meta { error, .. } => Some(error),
            _ => None,
        }
    }

    fn transport(error: reqwest::Error) -> Self {
        if error.is_builder() {
            return Self::InvalidRequest(error_chain(&error.without_url()));
        }
        // A connect timeout is both; it is a connect failure, since nothing was sent.
        let kind = if error.is_connect() {
            TransportKind::Connect
        } else if error.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        // The URL may be a signed media link: keep it out of messages that end up in logs.
        Self::Transport {
            kind,
            message: error_chain(&error.without_url()),
        }
    }

    fn unexpected(http_status: u16, body: &[u8]) -> Self {
        let cut = body.len().min(EXCERPT_BYTES);
        Self::UnexpectedResponse {
            http_status,
            body_excerpt: String::from_utf8_lossy(&body[..cut]).trim().to_owned(),
        }
    }

    /// Meta's envelope if the body holds one, else an unexpected answer.
    fn from_error_body(http_status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<MetaErrorEnvelope>(body) {
            Ok(envelope) => Self::Meta {
                http_status,
                error: Box::new(envelope.error),
            },
            Err(_) => Self::unexpected(http_status, body),
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// An async Graph API client. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    config: GraphConfig,
}

impl GraphClient {
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        if config.base_url.cannot_be_a_base() {
            return Err(GraphError::InvalidRequest(format!(
                "the Graph API base URL `{}` cannot take a path",
                config.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(GraphError::transport)?;
        Ok(Self { http, config })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// `GET /{phone-number-id}`: the number's display form, name and quality; checks the token too.
    pub async fn get_phone_number(
        &self,
        token: &SecretString,
        phone_number_id: &str,
    ) -> Result<PhoneNumber, GraphError> {
        let url = self.url(&[graph_id(phone_number_id)?])?;
        self.call(self.http.get(url), token).await
    }

    /// `GET /{phone-number-id}?fields=...`: only the fields named (and `id`), for those Meta
    /// leaves out by default, such as
    /// [`MESSAGING_LIMIT_FIELD`](crate::phone_number::MESSAGING_LIMIT_FIELD).
    pub async fn get_phone_number_fields(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        fields: &[&str],
    ) -> Result<PhoneNumber, GraphError> {
        let mut url = self.url(&[graph_id(phone_number_id)?])?;
        url.query_pairs_mut()
            .append_pair("fields", &fields.join(","));
        self.call(self.http.get(url), token).await
    }

    /// `GET /{phone-number-id}/whatsapp_business_profile`: every profile field Meta documents,
    /// from either shape Meta answers in.
    pub async fn get_business_profile(
        &self,
        token: &SecretString,
        phone_number_id: &str,
    ) -> Result<BusinessProfile, GraphError> {
        let mut url = self.url(&[graph_id(phone_number_id)?, "whatsapp_business_profile"])?;
        url.query_pairs_mut()
            .append_pair("fields", BUSINESS_PROFILE_FIELDS);
        let answer: BusinessProfileResponse = self.call(self.http.get(url), token).await?;
        Ok(answer.into_profile())
    }

    /// `POST /{phone-number-id}/whatsapp_business_profile`: changes the fields that are `Some`.
    pub async fn update_business_profile(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        update: &BusinessProfileUpdate,
    ) -> Result<(), GraphError> {
        let url = self.url(&[graph_id(phone_number_id)?, "whatsapp_business_profile"])?;
        let request = BusinessProfileUpdateRequest::new(update);
        let answer: SuccessResponse = self.call(self.http.post(url).json(&request), token).await?;
        expect_success(&answer)
    }

    /// `POST /{phone-number-id}/messages`: sends a message and returns its wamid.
    pub async fn send_message(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        request: &SendMessageRequest,
    ) -> Result<SendMessageResponse, GraphError> {
        let url = self.url(&[graph_id(phone_number_id)?, "messages"])?;
        self.call(self.http.post(url).json(request), token).await
    }

    /// Marks an inbound message as read, and with `typing_indicator` shows the customer that a
    /// reply is being typed (for up to 25 seconds or until the reply).
    pub async fn mark_read(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        wamid: &str,
        typing_indicator: bool,
    ) -> Result<(), GraphError> {
        let url = self.url(&[graph_id(phone_number_id)?, "messages"])?;
        let request = MarkReadRequest::new(wamid, typing_indicator);
        let answer: SuccessResponse = self.call(self.http.post(url).json(&request), token).await?;
        expect_success(&answer)
    }

    /// `POST /{phone-number-id}/media`: uploads a file and returns the id to send it by.
    pub async fn upload_media(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        bytes: Bytes,
        mime_type: &str,
        filename: &str,
    ) -> Result<UploadedMedia, GraphError> {
        let length = bytes.len() as u64;
        self.upload_media_body(
            token,
            phone_number_id,
            reqwest::Body::from(bytes),
            length,
            mime_type,
            filename,
        )
        .await
    }

    /// Uploads a file of `length` bytes from any body (a file streamed from disk, say), so large
    /// documents need not be held in memory.
    pub async fn upload_media_body(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        body: reqwest::Body,
        length: u64,
        mime_type: &str,
        filename: &str,
    ) -> Result<UploadedMedia, GraphError> {
        let url = self.url(&[graph_id(phone_number_id)?, "media"])?;
        let file = reqwest::multipart::Part::stream_with_length(body, length)
            .file_name(filename.to_owned())
            .mime_str(mime_type)
            .map_err(|_| GraphError::InvalidRequest(format!("`{mime_type}` is not a MIME type")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", MESSAGING_PRODUCT)
            .text("type", mime_type.to_owned())
            .part("file", file);
        let request = self
            .http
            .post(url)
            .multipart(form)
            .timeout(self.config.transfer_timeout);
        self.call(request, token).await
    }

    /// `GET /{media-id}`: the short-lived download URL and the file's type, size and hash.
    pub async fn get_media(
        &self,
        token: &SecretString,
        media_id: &str,
    ) -> Result<MediaInfo, GraphError> {
        let url = self.url(&[graph_id(media_id)?])?;
        self.call(self.http.get(url), token).await
    }

    /// Downloads media from the URL [`GraphClient::get_media`] gave, refusing more than `max_bytes`.
    pub async fn download_media(
        &self,
        token: &SecretString,
        url: &str,
        max_bytes: u64,
    ) -> Result<Bytes, GraphError> {
        let download = self.open_media_download(token, url).await?;
        read_body(download.response, max_bytes).await
    }

    /// Starts downloading media from the URL [`GraphClient::get_media`] gave and hands back the
    /// body to read chunk by chunk, so a large file goes to disk without filling memory. An
    /// answer that is not a success is read as Meta's error (its `http_status` tells an expired
    /// URL, 401/403/404/410, from a server fault).
    pub async fn open_media_download(
        &self,
        token: &SecretString,
        url: &str,
    ) -> Result<MediaDownload, GraphError> {
        let url = Url::parse(url)
            .map_err(|error| GraphError::InvalidRequest(format!("media URL: {error}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(GraphError::InvalidRequest(format!(
                "media URL has scheme `{}`, not http(s)",
                url.scheme()
            )));
        }
        let request = self.http.get(url).timeout(self.config.transfer_timeout);
        let response = self.execute(request, token).await?;
        let http_status = response.status().as_u16();
        if !response.status().is_success() {
            let body = read_body(response, MAX_JSON_BYTES).await?;
            return Err(GraphError::from_error_body(http_status, &body));
        }
        Ok(MediaDownload { response })
    }

    /// One page of `GET /{waba-id}/message_templates`, from the cursor `after` (or the start).
    pub async fn list_templates(
        &self,
        token: &SecretString,
        waba_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<TemplatePage, GraphError> {
        let mut url = self.url(&[graph_id(waba_id)?, "message_templates"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            if let Some(after) = after {
                query.append_pair("after", after);
            }
        }
        self.call(self.http.get(url), token).await
    }

    /// Every template of the account, following the cursors page by page to the last one.
    ///
    /// Follows `paging.cursors.after` against the configured base URL rather than the `next`
    /// URL itself, so the token never goes to a host named in an answer.
    pub async fn list_all_templates(
        &self,
        token: &SecretString,
        waba_id: &str,
        limit: u32,
    ) -> Result<Vec<MessageTemplate>, GraphError> {
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let page = self
                .list_templates(token, waba_id, after.as_deref(), limit)
                .await?;
            let next = page.next_cursor().map(str::to_owned);
            templates.extend(page.data);
            match next {
                None => return Ok(templates),
                Some(cursor) if after.as_deref() == Some(cursor.as_str()) => {
                    return Err(GraphError::UnexpectedResponse {
                        http_status: 200,
                        body_excerpt: format!("the templates paging cursor `{cursor}` repeated"),
                    });
                }
                Some(cursor) => after = Some(cursor),
            }
        }
        Err(GraphError::UnexpectedResponse {
            http_status: 200,
            body_excerpt: format!(
                "the templates list did not end after {MAX_TEMPLATE_PAGES} pages"
            ),
        })
    }

    /// `POST /{waba-id}/message_templates`: submits a template for review.
    pub async fn create_template(
        &self,
        token: &SecretString,
        waba_id: &str,
        request: &TemplateCreateRequest,
    ) -> Result<TemplateCreateResponse, GraphError> {
        let url = self.url(&[graph_id(waba_id)?, "message_templates"])?;
        self.call(self.http.post(url).json(request), token).await
    }

    /// `{base_url}/{version}/{segments...}`.
    fn url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                GraphError::InvalidRequest("the Graph API base URL cannot take a path".to_owned())
            })?
            .pop_if_empty()
            .push(&self.config.version)
            .extend(segments);
        Ok(url)
    }

    /// Sends the request with the token and decodes a JSON answer, or Meta's error.
    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        token: &SecretString,
    ) -> Result<T, GraphError> {
        let response = self.execute(request, token).await?;
        let http_status = response.status().as_u16();
        let success = response.status().is_success();
        let body = read_body(response, MAX_JSON_BYTES).await?;
        if !success {
            return Err(GraphError::from_error_body(http_status, &body));
        }
        serde_json::from_slice(&body).map_err(|_| GraphError::unexpected(http_status, &body))
    }

    async fn execute(
        &self,
        request: RequestBuilder,
        token: &SecretString,
    ) -> Result<Response, GraphError> {
        let request = request
            .bearer_auth(token.expose_secret())
            .build()
            .map_err(GraphError::transport)?;
        let method: Method = request.method().clone();
        let path = request.url().path().to_owned();
        let response = self
            .http
            .execute(request)
            .await
            .map_err(GraphError::transport);
        match &response {
            Ok(response) => {
                tracing::debug!(%method, path, status = response.status().as_u16(), "graph api call")
            }
            Err(error) => tracing::debug!(%method, path, %error, "graph api call failed"),
        }
        response
    }
}

/// A media download under way: its announced length and its body, chunk by chunk.
#[derive(Debug)]
pub struct MediaDownload {
    response: Response,
}

impl MediaDownload {
    /// The length the server announced, if it did.
    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The next part of the body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, GraphError> {
        self.response.chunk().await.map_err(GraphError::transport)
    }
}

/// A `{"success": false}` answer is not Meta's error envelope, yet nothing was done.
fn expect_success(answer: &SuccessResponse) -> Result<(), GraphError> {
    if answer.success {
        Ok(())
    } else {
        Err(GraphError::UnexpectedResponse {
            http_status: 200,
            body_excerpt: r#"{"success": false}"#.to_owned(),
        })
    }
}

/// A Graph object id (phone number, account, media): it becomes a path segment, so it must be one.
fn graph_id(id: &str) -> Result<&str, GraphError> {
    let fits = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fits {
        Ok(id)
    } else {
        Err(GraphError::InvalidRequest(format!(
            "`{id}` is not a Graph object id (letters, digits, `_` and `-`)"
        )))
    }
}

/// Reads the whole body, refusing more than `max_bytes` before buffering it.
async fn read_body(mut response: Response, max_bytes: u64) -> Result<Bytes, GraphError> {
    let http_status = response.status().as_u16();
    let too_large = GraphError::BodyTooLarge {
        http_status,
        max_bytes,
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes)
    {
        return Err(too_large);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(GraphError::transport)? {
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_change_the_path_are_refused() {
        for bad in ["", "..", "1/2", "1?x=2", "a b", "%2e"] {
            assert!(graph_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(graph_id("106540352242922").ok(), Some("106540352242922"));
    }

    #[test]
    fn paths_keep_the_base_prefix_and_put_the_version_first() {
        let client = GraphClient::new(GraphConfig {
            base_url: Url::parse("http://127.0.0.1:9/graph/").unwrap(),
            version: "v24.0".to_owned(),
            ..GraphConfig::default()
        })
        .unwrap();
        let url = client.url(&["123", "messages"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/graph/v24.0/123/messages");
    }

    #[test]
    fn outcome_is_unknown_after_a_timeout_but_not_after_a_refused_connection() {
        let transport = |kind| GraphError::Transport {
            kind,
            message: String::new(),
        };
        assert!(!transport(TransportKind::Connect).outcome_unknown());
        assert!(transport(TransportKind::Timeout).outcome_unknown());
        assert!(transport(TransportKind::Other).outcome_unknown());
        assert_eq!(
            transport(TransportKind::Connect).class(),
            ErrorClass::RetryLater
        );
        let unexpected = |http_status| GraphError::UnexpectedResponse {
            http_status,
            body_excerpt: String::new(),
        };
        assert!(unexpected(200).outcome_unknown());
        assert!(!unexpected(502).outcome_unknown());
        assert_eq!(unexpected(502).class(), ErrorClass::RetryLater);
        assert_eq!(unexpected(400).class(), ErrorClass::Permanent);
    }
}
