//! A phone number's WhatsApp Business Profile: what customers see about the business (about text,
//! address, description, email, websites, category, picture), read with
//! `GET /{phone-number-id}/whatsapp_business_profile` and changed with a `POST` there.

use serde::{Deserialize, Serialize};

use crate::send::MESSAGING_PRODUCT;
use crate::shared::Extra;

/// The fields a profile read asks for: every one Meta documents.
pub const BUSINESS_PROFILE_FIELDS: &str =
    "about,address,description,email,profile_picture_url,websites,vertical";

open_string_enum! {
    /// `vertical`: the business category Meta shows on the profile.
    pub enum Vertical {
        Undefined = "UNDEFINED",
        /// Meta's `OTHER` (the enum's own `Other` keeps values this crate does not know).
        OtherBusiness = "OTHER",
        Auto = "AUTO",
        Beauty = "BEAUTY",
        Apparel = "APPAREL",
        Edu = "EDU",
        Entertain = "ENTERTAIN",
        EventPlan = "EVENT_PLAN",
        Finance = "FINANCE",
        Grocery = "GROCERY",
        Govt = "GOVT",
        Hotel = "HOTEL",
        Health = "HEALTH",
        Nonprofit = "NONPROFIT",
        ProfServices = "PROF_SERVICES",
        Retail = "RETAIL",
        Travel = "TRAVEL",
        Restaurant = "RESTAURANT",
        NotABiz = "NOT_A_BIZ",
    }
}

/// A business profile as Meta describes it. Fields Meta leaves out (never set, or cleared) are
/// `None`; keys this crate does not name (`messaging_product`, ones Meta adds later) are kept in
/// `extra` rather than refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessProfile {
    /// The "About" text, 1 to 139 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where Meta serves the profile picture; set through an upload handle, never directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    /// Up to two URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websites: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<Vertical>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to a profile read: `data` holds the one profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessProfileResponse {
    #[serde(default)]
    pub data: Vec<BusinessProfileEntry>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One element of `data`. Meta answers with the fields on the element itself; its API reference
/// shows them under a `business_profile` key instead. Both are read, so a change of shape on
/// Meta's side does not lose the profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessProfileEntry {
    /// The reference's shape: the fields one level down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_profile: Option<BusinessProfile>,
    /// The live shape: the fields on the element (and, in the nested shape, whatever else is there).
    #[serde(flatten)]
    pub fields: BusinessProfile,
}

impl BusinessProfileEntry {
    /// The profile, from whichever shape the element has.
    pub fn into_profile(self) -> BusinessProfile {
        self.business_profile.unwrap_or(self.fields)
    }
}

impl BusinessProfileResponse {
    /// The first profile of `data`. An empty `data` reads as a profile with nothing set: there is
    /// nothing on it to show, whichever way Meta says so.
    pub fn into_profile(self) -> BusinessProfile {
        self.data
            .into_iter()
            .next()
            .map(BusinessProfileEntry::into_profile)
            .unwrap_or_default()
    }
}

/// Changes to a business profile: only the fields that are `Some` are sent, and Meta changes only
/// those. An empty string clears a text field; an empty list clears the websites.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessProfileUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websites: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<Vertical>,
    /// The handle of a picture uploaded with the Resumable Upload API; Meta turns it into
    /// `profile_picture_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_handle: Option<String>,
}

/// The body of a profile update: `messaging_product` and the changes, borrowed so an update is not
/// copied to be sent.
#[derive(Clone, Debug, Serialize)]
pub struct BusinessProfileUpdateRequest<'a> {
    pub messaging_product: &'static str,
    #[serde(flatten)]
    pub update: &'a BusinessProfileUpdate,
}

impl<'a> BusinessProfileUpdateRequest<'a> {
    pub fn new(update: &'a BusinessProfileUpdate) -> Self {
        Self {
            messaging_product: MESSAGING_PRODUCT,
            update,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `business_profile_get_response.json` of Meta's examples, verbatim: the reference's shape.
    const NESTED: &str = r#"{
  "data": [
    {
      "business_profile": {
        "messaging_product": "whatsapp",
        "about": "Welcome to our business! We provide excellent service.",
        "address": "123 Business Street, City, State 12345",
        "description": "We are a leading provider of quality products and services.",
        "email": "contact@business.com",
        "profile_picture_url": "https://pps.whatsapp.net/v/profile_picture_url",
        "websites": [
          "https://www.business.com",
          "https://www.facebook.com/business"
        ],
        "vertical": "RESTAURANT"
      }
    }
  ]
}
"#;

    fn parse(body: &str) -> BusinessProfile {
        match serde_json::from_str::<BusinessProfileResponse>(body) {
            Ok(response) => response.into_profile(),
            Err(error) => panic!("{error}: {body}"),
        }
    }

    fn expected() -> BusinessProfile {
        let mut extra = Extra::new();
        extra.insert("messaging_product".into(), "whatsapp".into());
        BusinessProfile {
            about: Some("Welcome to our business! We provide excellent service.".into()),
            address: Some("123 Business Street, City, State 12345".into()),
            description: Some("We are a leading provider of quality products and services.".into()),
            email: Some("contact@business.com".into()),
            profile_picture_url: Some("https://pps.whatsapp.net/v/profile_picture_url".into()),
            websites: Some(vec![
                "https://www.business.com".into(),
                "https://www.facebook.com/business".into(),
            ]),
            vertical: Some(Vertical::Restaurant),
            extra,
        }
    }

    #[test]
    fn the_references_nested_shape_is_read() {
        assert_eq!(parse(NESTED), expected());
    }

    #[test]
    fn the_flat_shape_is_read() {
        let flat = json!({"data": [{
            "about": "Welcome to our business! We provide excellent service.",
            "address": "123 Business Street, City, State 12345",
            "description": "We are a leading provider of quality products and services.",
            "email": "contact@business.com",
            "profile_picture_url": "https://pps.whatsapp.net/v/profile_picture_url",
            "websites": ["https://www.business.com", "https://www.facebook.com/business"],
            "vertical": "RESTAURANT",
            "messaging_product": "whatsapp"
        }]});
        assert_eq!(parse(&flat.to_string()), expected());
    }

    #[test]
    fn unknown_fields_and_unknown_verticals_are_kept_not_refused() {
        let profile = parse(
            r#"{"data": [{"about": "Hi", "vertical": "SPACE_TRAVEL", "new_field": {"x": 1}}],
                "paging": {"cursors": {}}}"#,
        );
        assert_eq!(profile.about.as_deref(), Some("Hi"));
        assert_eq!(
            profile.vertical,
            Some(Vertical::Other("SPACE_TRAVEL".into()))
        );
        assert_eq!(profile.extra.get("new_field"), Some(&json!({"x": 1})));
        assert_eq!(profile.email, None);
    }

    #[test]
    fn an_empty_answer_is_an_empty_profile() {
        assert_eq!(parse(r#"{"data": []}"#), BusinessProfile::default());
        assert_eq!(
            parse(r#"{"data": [{"messaging_product": "whatsapp"}]}"#).about,
            None
        );
    }

    #[test]
    fn an_update_sends_only_what_is_set() {
        let update = BusinessProfileUpdate {
            about: Some(String::new()),
            vertical: Some(Vertical::Retail),
            ..Default::default()
        };
        let body = serde_json::to_value(BusinessProfileUpdateRequest::new(&update));
        assert_eq!(
            body.ok(),
            Some(json!({"messaging_product": "whatsapp", "about": "", "vertical": "RETAIL"}))
        );
    }
}
