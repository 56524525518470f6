//! A number's WhatsApp business profile (what customers see: about, address, description, email,
//! websites, category, picture), read from and written to Meta through the connection's token,
//! with the number's quality rating and messaging limit tier beside it. Nothing of it is stored
//! here: Meta holds the profile, and a copy could only go stale.

use cloudapi::business_profile::{BusinessProfile, BusinessProfileUpdate, Vertical};
use cloudapi::{GraphError, MetaError};
use serde_json::{Value, json};

use crate::app::state::AppState;
use crate::store::StoreError;
use crate::store::connections::{ConnectionRow, STATUS_DISCONNECTED};
use crate::validation::FieldErrors;
use crate::vault::{SecretSlot, VaultError};

pub const MAX_ABOUT_CHARS: usize = 139;
pub const MAX_ADDRESS_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 512;
pub const MAX_EMAIL_CHARS: usize = 128;
pub const MAX_WEBSITES: usize = 2;
pub const MAX_WEBSITE_CHARS: usize = 256;

/// Meta's business categories.
pub const VERTICALS: [&str; 19] = [
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "NOT_A_BIZ",
];

const KEYS: [&str; 6] = [
    "about",
    "address",
    "description",
    "email",
    "websites",
    "vertical",
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("connection not found")]
    NotFound,
    #[error("this connection is disconnected; connect the number again to see its profile")]
    Disconnected,
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error("Meta refused: {}", .0.details().unwrap_or("no reason given"))]
    MetaRejected(Box<MetaError>),
    #[error("Meta could not be reached: {0}")]
    MetaUnreachable(GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<GraphError> for ProfileError {
    fn from(error: GraphError) -> Self {
        match error {
            GraphError::Meta { error, .. } => Self::MetaRejected(error),
            other => Self::MetaUnreachable(other),
        }
    }
}

/// Reads `PATCH /api/v1/connections/{id}/profile`: only the fields given change; `""` (or
/// `null`) clears address, description and email, `[]` the websites. Meta's limits are checked
/// here, so a mistake is named before the call.
pub fn parse_update(body: &Value) -> Result<BusinessProfileUpdate, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(body) = body.as_object() else {
        errors.add("body", "must be a JSON object");
        return Err(errors);
    };
    errors.unknown_keys(body, &KEYS, "a business profile");
    let mut update = BusinessProfileUpdate::default();
    let text = |field: &str, max: usize, clearable: bool, errors: &mut FieldErrors| match body
        .get(field)
    {
        None => None,
        Some(Value::Null) if clearable => Some(String::new()),
        Some(Value::String(value)) => {
            let value = value.trim();
            let chars = value.chars().count();
            if chars > max || (!clearable && chars == 0) {
                let least = if clearable { 0 } else { 1 };
                errors.add_limit(
                    field,
                    format!("must be {least} to {max} characters (it has {chars})"),
                    max as u64,
                );
                None
            } else {
                Some(value.to_owned())
            }
        }
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    };
    update.about = text("about", MAX_ABOUT_CHARS, false, &mut errors);
    update.address = text("address", MAX_ADDRESS_CHARS, true, &mut errors);
    update.description = text("description", MAX_DESCRIPTION_CHARS, true, &mut errors);
    update.email = text("email", MAX_EMAIL_CHARS, true, &mut errors);
    if let Some(email) = &update.email
        && !email.is_empty()
        && !looks_like_email(email)
    {
        errors.add("email", "must be an email address like hello@example.com");
    }
    match body.get("websites") {
        None => {}
        Some(Value::Null) => update.websites = Some(Vec::new()),
        Some(Value::Array(sites)) => {
            if sites.len() > MAX_WEBSITES {
                errors.add_limit(
                    "websites",
                    format!("may hold at most {MAX_WEBSITES} addresses"),
                    MAX_WEBSITES as u64,
                );
            }
            let mut kept = Vec::new();
            for (i, site) in sites.iter().enumerate() {
                let field = format!("websites[{i}]");
                match site.as_str().map(str::trim) {
                    Some(s) if s.chars().count() > MAX_WEBSITE_CHARS => errors.add_limit(
                        field,
                        format!("must be at most {MAX_WEBSITE_CHARS} characters"),
                        MAX_WEBSITE_CHARS as u64,
                    ),
                    Some(s) if is_web_address(s) => kept.push(s.to_owned()),
                    _ => errors.add(
                        field,
                        "must be a web address starting with https:// or http://",
                    ),
                }
            }
            update.websites = Some(kept);
        }
        Some(_) => errors.add("websites", "must be a list of up to 2 web addresses"),
    }
    match body.get("vertical") {
        None => {}
        Some(Value::String(v)) if VERTICALS.contains(&v.as_str()) => {
            update.vertical = Some(Vertical::from(v.as_str()));
        }
        Some(_) => errors.add(
            "vertical",
            format!("must be one of {}", VERTICALS.join(", ")),
        ),
    }
    if errors.is_empty() && update == BusinessProfileUpdate::default() {
        errors.add(
            "body",
            format!("names nothing to change (fields: {})", KEYS.join(", ")),
        );
    }
    errors.finish()?;
    Ok(update)
}

fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_web_address(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

/// The profile Meta holds for the connection's number, with its quality and messaging limit.
pub async fn read(state: &AppState, tenant_id: &str, id: &str) -> Result<Value, ProfileError> {
    let (connection, token) = open(state, tenant_id, id).await?;
    let profile = state
        .graph
        .get_business_profile(&token, &connection.phone_number_id)
        .await?;
    let number = state
        .graph
        .get_phone_number_fields(
            &token,
            &connection.phone_number_id,
            &[
                "quality_rating",
                cloudapi::phone_number::MESSAGING_LIMIT_FIELD,
            ],
        )
        .await?;
    Ok(view(
        &connection,
        &profile,
        number.quality_rating.as_deref(),
        number.whatsapp_business_manager_messaging_limit.as_deref(),
    ))
}

/// Sends the change to Meta, then answers the profile as Meta now has it.
pub async fn update(
    state: &AppState,
    tenant_id: &str,
    id: &str,
    change: &BusinessProfileUpdate,
) -> Result<Value, ProfileError> {
    let (connection, token) = open(state, tenant_id, id).await?;
    state
        .graph
        .update_business_profile(&token, &connection.phone_number_id, change)
        .await?;
    tracing::info!(connection_id = %connection.id, "business profile changed");
    read(state, tenant_id, id).await
}

async fn open(
    state: &AppState,
    tenant_id: &str,
    id: &str,
) -> Result<(ConnectionRow, secrecy::SecretString), ProfileError> {
    let connection = state
        .store
        .connection(tenant_id, id)
        .await?
        .ok_or(ProfileError::NotFound)?;
    let sealed = match connection.access_token.as_deref() {
        Some(sealed) if connection.status != STATUS_DISCONNECTED => sealed,
        _ => return Err(ProfileError::Disconnected),
    };
    let token = state.vault.open(
        SecretSlot::new("connections", "access_token", &connection.id),
        sealed,
    )?;
    Ok((connection, token))
}

fn view(
    connection: &ConnectionRow,
    profile: &BusinessProfile,
    quality_rating: Option<&str>,
    messaging_limit_tier: Option<&str>,
) -> Value {
    json!({
        "connection_id": connection.id,
        "about": profile.about,
        "address": profile.address,
        "description": profile.description,
        "email": profile.email,
        "websites": profile.websites.clone().unwrap_or_default(),
        "vertical": profile.vertical.as_ref().map(|v| v.as_str().to_owned()),
        "profile_picture_url": profile.profile_picture_url,
        "quality_rating": quality_rating,
        "messaging_limit_tier": messaging_limit_tier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_checked_against_metas_limits_field_by_field() {
        let errors = parse_update(&json!({
            "about": "x".repeat(140), "email": "not an email", "websites": ["https://a.example", "ftp://b", "https://c"],
            "vertical": "SPACESHIPS", "colour": "red"
        }))
        .unwrap_err();
        for field in [
            "about",
            "email",
            "websites",
            "websites[1]",
            "vertical",
            "colour",
        ] {
            assert!(errors.has(field), "{field}: {}", errors.summary());
        }
        let change =
            parse_update(&json!({"about": " Open 9 to 5 ", "address": null, "vertical": "RETAIL"}))
                .unwrap();
        assert_eq!(change.about.as_deref(), Some("Open 9 to 5"));
        assert_eq!(
            change.address.as_deref(),
            Some(""),
            "null clears the address"
        );
        assert_eq!(change.vertical, Some(Vertical::Retail));
        assert_eq!(change.email, None, "a field left out is not changed");
        assert!(
            parse_update(&json!({"about": ""}))
                .unwrap_err()
                .has("about"),
            "about cannot be cleared"
        );
        assert!(
            parse_update(&json!({})).unwrap_err().has("body"),
            "an empty change is told"
        );
    }
}
