//! A thin client for OpenAI-compatible `/chat/completions`, tolerant of what compatible providers
//! do differently: a base URL with or without `/v1`, the answer as a string or as a list of parts
//! (or the legacy `text`), reasoning wrapped in `<think>` ahead of the answer, and errors as an
//! object, a string or plain text.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// One turn of the conversation given to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the model could not be reached: {0}")]
    Unreachable(String),
    #[error("the model answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the model's answer had no text in it")]
    Empty,
}

#[derive(Debug, Clone)]
pub struct ModelClient {
    http: reqwest::Client,
}

impl ModelClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// Asks `model` at `base_url` for the next assistant turn.
    pub async fn complete(
        &self,
        base_url: &str,
        model: &str,
        api_key: Option<&SecretString>,
        messages: &[ChatMessage],
        timeout: Duration,
    ) -> Result<String, ModelError> {
        let body = json!({
            "model": model,
            "messages": messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect::<Vec<_>>(),
        });
        let mut request = self
            .http
            .post(completions_url(base_url))
            .timeout(timeout)
            .json(&body);
        if let Some(key) = api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| classify(e, timeout))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| classify(e, timeout))?;
        if !status.is_success() {
            return Err(ModelError::Refused {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let answer: Value = serde_json::from_str(&text).map_err(|_| ModelError::Empty)?;
        answer_text(&answer).ok_or(ModelError::Empty)
    }
}

fn classify(error: reqwest::Error, timeout: Duration) -> ModelError {
    if error.is_timeout() {
        ModelError::Timeout(timeout)
    } else {
        // Without the URL: a provider's URL may carry a key in its query.
        ModelError::Unreachable(error.without_url().to_string())
    }
}

/// `…/v1` and `…/openai/v1` get `/chat/completions`; a bare host gets `/v1/chat/completions`; a
/// URL that already names the endpoint is used as it is.
pub fn completions_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base.ends_with("/chat/completions") {
        return base.to_owned();
    }
    let path_is_empty = url::Url::parse(base)
        .map(|u| u.path().trim_matches('/').is_empty())
        .unwrap_or(false);
    if path_is_empty {
        format!("{base}/v1/chat/completions")
    } else {
        format!("{base}/chat/completions")
    }
}

/// The answer's text, whichever of the usual shapes it came in.
pub fn answer_text(answer: &Value) -> Option<String> {
    let choice = answer.get("choices")?.as_array()?.first()?;
    let content = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .or_else(|| choice.get("text"))?;
    let text = match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.as_str()),
                part => part.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => return None,
    };
    let text = strip_reasoning(&text).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Drops a leading `<think>…</think>` block that reasoning models put before their answer.
fn strip_reasoning(text: &str) -> &str {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix("<think>") {
        return match rest.find("</think>") {
            Some(end) => &rest[end + "</think>".len()..],
            None => "",
        };
    }
    text
}

/// What the provider said went wrong, in a line.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("error")
            .and_then(|e| e.get("message").and_then(Value::as_str).or(e.as_str()))
            .or_else(|| v.get("message").and_then(Value::as_str))
            .or_else(|| v.get("detail").and_then(Value::as_str))
            .map(str::to_owned)
    });
    let message = message.unwrap_or_else(|| body.trim().to_owned());
    message.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_follow_the_provider_base() {
        assert_eq!(
            completions_url("https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            completions_url("http://127.0.0.1:11434"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(
            completions_url("https://x.example/openai/v1/chat/completions"),
            "https://x.example/openai/v1/chat/completions"
        );
    }

    #[test]
    fn answers_in_any_usual_shape_give_their_text() {
        let string = json!({"choices": [{"message": {"role": "assistant", "content": " Hi! "}}]});
        assert_eq!(answer_text(&string).as_deref(), Some("Hi!"));
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]}}]});
        assert_eq!(answer_text(&parts).as_deref(), Some("Hi there"));
        let legacy = json!({"choices": [{"text": "Hello"}]});
        assert_eq!(answer_text(&legacy).as_deref(), Some("Hello"));
        let thinking = json!({"choices": [{"message": {"content": "<think>they want hours</think>\nWe open at 9."}}]});
        assert_eq!(answer_text(&thinking).as_deref(), Some("We open at 9."));
        let empty = json!({"choices": [{"message": {"content": null, "reasoning_content": "x"}}]});
        assert_eq!(answer_text(&empty), None);
        assert_eq!(answer_text(&json!({"choices": []})), None);
    }

    #[test]
    fn provider_errors_read_in_any_shape() {
        assert_eq!(
            error_message(r#"{"error": {"message": "bad key"}}"#),
            "bad key"
        );
        assert_eq!(error_message(r#"{"error": "overloaded"}"#), "overloaded");
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }
}
