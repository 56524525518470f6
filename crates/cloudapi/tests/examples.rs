//! Every payload in the shared Meta examples parses into its type and serializes back unchanged.

use std::path::PathBuf;

use cloudapi::business_profile::{
    BusinessProfileResponse, BusinessProfileUpdate, BusinessProfileUpdateRequest, Vertical,
};
use cloudapi::error::{ErrorClass, ErrorObject, MetaError, MetaErrorEnvelope};
use cloudapi::media::{MediaInfo, UploadedMedia};
use cloudapi::phone_number::{PhoneNumber, PhoneNumberPage};
use cloudapi::send::{
    InteractiveKind, MarkReadRequest, OutboundContent, SendMessageRequest, SendMessageResponse,
    SuccessResponse,
};
use cloudapi::templates::{
    TemplateCreateRequest, TemplateCreateResponse, TemplateEditRequest, TemplatePage,
};
use cloudapi::webhook::{
    ChangeValue, ContentError, Item, Message, MessageContent, MessagesValue, Notification, Status,
    StatusKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Meta's example payloads, copied into the repository (`testdata/meta-examples`, with
/// `SOURCES.md` naming where each came from) so the tests run from any checkout.
fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/meta-examples")
}

/// When the team's shared copy sits beside the checkout, the repository's copy must match it.
#[test]
fn the_repository_copy_of_the_examples_matches_the_shared_one_when_present() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/meta/examples");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        eprintln!("no shared examples beside this checkout; nothing to compare");
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let ours = std::fs::read(examples_dir().join(name)).unwrap_or_else(|_| {
            panic!(
                "{} is missing from testdata/meta-examples",
                name.to_string_lossy()
            )
        });
        assert_eq!(
            ours,
            std::fs::read(&path).unwrap(),
            "{} differs",
            name.to_string_lossy()
        );
    }
}

/// Every `.json` example, by file name. Panics when the directory is missing: a test that finds
/// nothing to check must not pass.
fn all_examples() -> Vec<(String, Value)> {
    let dir = examples_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()));
    let mut examples: Vec<(String, Value)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read(&path).unwrap();
            let value = serde_json::from_slice(&text)
                .unwrap_or_else(|error| panic!("{name} is not JSON: {error}"));
            (name, value)
        })
        .collect();
    examples.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        examples.len() > 50,
        "only {} examples found in {}",
        examples.len(),
        dir.display()
    );
    examples
}

fn example(name: &str) -> Value {
    let path = examples_dir().join(name);
    let text = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

/// Parses `raw` as `T` and checks that serializing it gives `raw` back.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, raw: &Value) -> T {
    let typed: T =
        serde_json::from_value(raw.clone()).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        raw,
        "{name} does not round-trip"
    );
    typed
}

/// Parses a webhook example and checks that every part of it is typed and nothing is lost.
fn check_webhook(name: &str, raw: &Value) -> Notification {
    let notification = Notification::parse(&serde_json::to_vec(raw).unwrap()).unwrap();
    assert_eq!(
        &serde_json::to_value(&notification).unwrap(),
        raw,
        "{name} does not round-trip"
    );
    assert!(
        notification.malformed().is_empty(),
        "{name}: {:?}",
        notification.malformed()
    );
    assert!(notification.changes().count() > 0, "{name} has no changes");
    for (_, change) in notification.changes() {
        let messages = match &change.value {
            ChangeValue::Messages(value) => {
                for status in value.statuses() {
                    let status = status.parsed().unwrap();
                    assert!(!matches!(status.status, StatusKind::Other(_)), "{name}");
                }
                value.messages()
            }
            ChangeValue::MessageEchoes(value) => value.message_echoes(),
            ChangeValue::TemplateStatus(_)
            | ChangeValue::TemplateQuality(_)
            | ChangeValue::TemplateCategory(_) => &[],
            other => panic!("{name}: the change was not typed: {other:?}"),
        };
        for message in messages {
            let message = message.parsed().unwrap();
            match message.content() {
                Ok(content) => {
                    assert!(!matches!(content, MessageContent::Unknown { .. }), "{name}");
                    assert_eq!(
                        Some(&serde_json::to_value(&content).unwrap()),
                        message.type_object(),
                        "{name}: the content does not round-trip"
                    );
                }
                // Meta's own example of a payload it could not describe: the value-level error says so.
                Err(ContentError::Missing { .. })
                    if name == "webhook_message_interactive_with_value_errors.json" => {}
                Err(error) => panic!("{name}: {error}"),
            }
        }
    }
    notification
}

#[test]
fn every_example_parses_into_its_type_and_round_trips() {
    let mut checked = 0;
    for (name, raw) in all_examples() {
        let n = name.as_str();
        match n {
            _ if n.starts_with("webhook_") => {
                check_webhook(n, &raw);
            }
            "send_mark_as_read_request.json" | "send_typing_indicator_request.json" => {
                round_trip::<MarkReadRequest>(n, &raw);
            }
            _ if n.starts_with("send_") && n.ends_with("_request.json") => {
                let request: SendMessageRequest = round_trip(n, &raw);
                assert!(
                    !matches!(request.content, OutboundContent::Other { .. }),
                    "{n}"
                );
            }
            "send_mark_as_read_response.json"
            | "media_delete_response.json"
            | "business_profile_update_response.json" => {
                assert!(round_trip::<SuccessResponse>(n, &raw).success);
            }
            _ if n.starts_with("send_") && n.contains("_response") => {
                assert!(
                    round_trip::<SendMessageResponse>(n, &raw).wamid().is_some(),
                    "{n}"
                );
            }
            _ if n.starts_with("error_") && n.contains("_error_object") => {
                round_trip::<ErrorObject>(n, &raw);
            }
            _ if n.starts_with("error_") && n.contains("_inner") => {
                round_trip::<MetaError>(n, &raw);
            }
            _ if n.starts_with("error_") => {
                round_trip::<MetaErrorEnvelope>(n, &raw);
            }
            "media_get_url_response.json" => {
                round_trip::<MediaInfo>(n, &raw);
            }
            "media_upload_response.json" => {
                round_trip::<UploadedMedia>(n, &raw);
            }
            _ if n.starts_with("phone_number_") => {
                round_trip::<PhoneNumber>(n, &raw);
            }
            "waba_phone_numbers_list_response.json" => {
                round_trip::<PhoneNumberPage>(n, &raw);
            }
            _ if n.starts_with("templates_list_") => {
                round_trip::<TemplatePage>(n, &raw);
            }
            "template_create_request.json" => {
                round_trip::<TemplateCreateRequest>(n, &raw);
            }
            "template_create_response.json" => {
                round_trip::<TemplateCreateResponse>(n, &raw);
            }
            "template_edit_components_request.json" => {
                round_trip::<TemplateEditRequest>(n, &raw);
            }
            "business_profile_get_response.json" => {
                let profile = round_trip::<BusinessProfileResponse>(n, &raw).into_profile();
                assert_eq!(profile.vertical, Some(Vertical::Restaurant), "{n}");
                assert_eq!(profile.websites.map(|w| w.len()), Some(2), "{n}");
            }
            "business_profile_update_request.json" => {
                let update: BusinessProfileUpdate = serde_json::from_value(raw.clone()).unwrap();
                assert_eq!(
                    serde_json::to_value(BusinessProfileUpdateRequest::new(&update)).unwrap(),
                    raw,
                    "{n} does not round-trip"
                );
            }
            _ => panic!("{n}: no type is known for this example; add it here"),
        }
        checked += 1;
    }
    assert!(checked > 90, "only {checked} examples checked");
}

#[test]
fn error_examples_classify_by_their_code() {
    let envelope = |name| {
        serde_json::from_value::<MetaErrorEnvelope>(example(name))
            .unwrap()
            .error
    };
    let object = |name| serde_json::from_value::<ErrorObject>(example(name)).unwrap();
    assert_eq!(
        envelope("error_100_invalid_parameter.json").class(),
        ErrorClass::Permanent
    );
    assert_eq!(
        envelope("error_100_invalid_parameter.json").details(),
        Some("Message must be a template message.")
    );
    assert_eq!(
        envelope("error_graph_api_generic.json").class(),
        ErrorClass::CredentialsRejected
    );
    assert_eq!(
        envelope("error_graph_api_generic.json")
            .error_user_title
            .as_deref(),
        Some("A title")
    );
    let expired: MetaError =
        serde_json::from_value(example("error_190_expired_token_inner.json")).unwrap();
    assert_eq!(
        (expired.class(), expired.error_subcode),
        (ErrorClass::CredentialsRejected, Some(463))
    );
    assert_eq!(
        object("error_131047_reengagement_error_object.json").class(),
        ErrorClass::ServiceWindowClosed
    );
    assert_eq!(
        object("error_131053_media_upload_error_object.json").class(),
        ErrorClass::RetryLater
    );
}

/// The one `messages` change of a webhook example.
fn messages_value(name: &str) -> MessagesValue {
    let notification = check_webhook(name, &example(name));
    let mut changes = notification.changes();
    let Some((_, change)) = changes.next() else {
        panic!("{name} has no change")
    };
    match &change.value {
        ChangeValue::Messages(value) => value.clone(),
        other => panic!("{name}: not a messages change: {other:?}"),
    }
}

fn only_message(name: &str) -> Message {
    let value = messages_value(name);
    assert_eq!(value.messages().len(), 1, "{name}");
    value.messages()[0].parsed().unwrap().clone()
}

fn only_status(name: &str) -> Status {
    let value = messages_value(name);
    assert_eq!(value.statuses().len(), 1, "{name}");
    value.statuses()[0].parsed().unwrap().clone()
}

#[test]
fn a_removed_reaction_has_no_emoji() {
    let MessageContent::Reaction(removed) = only_message("webhook_message_reaction_removed.json")
        .content()
        .unwrap()
    else {
        panic!("not a reaction")
    };
    assert_eq!(removed.emoji, None);
    assert!(removed.message_id.starts_with("wamid."));
    let MessageContent::Reaction(added) = only_message("webhook_message_reaction.json")
        .content()
        .unwrap()
    else {
        panic!("not a reaction")
    };
    assert_eq!(added.emoji.as_deref(), Some("👍"));
}

#[test]
fn a_flow_reply_keeps_response_json_as_a_string_and_decodes_it() {
    let message = only_message("webhook_message_interactive_nfm_reply_flow.json");
    let MessageContent::Interactive(interactive) = message.content().unwrap() else {
        panic!("not interactive")
    };
    assert_eq!(interactive.kind, "nfm_reply");
    let reply = interactive.nfm_reply.unwrap();
    assert!(message.type_object().unwrap()["nfm_reply"]["response_json"].is_string());
    let answers = reply.response().unwrap();
    assert_eq!(answers["flow_token"], json!("AQAAAAACS5FpgQ_cAAAAAD0QI3s."));
    assert_eq!(answers["delivery_rating"], json!("4"));
    assert_eq!(
        message.context.unwrap().id.as_deref(),
        Some("wamid.gvwegfretge==")
    );
}

#[test]
fn statuses_carry_conversation_pricing_errors_and_callback_data() {
    let sent = only_status("webhook_status_sent.json");
    assert_eq!(sent.status, StatusKind::Sent);
    assert_eq!(sent.timestamp_secs(), Some(1750030073));
    let conversation = sent.conversation.unwrap();
    assert_eq!(
        conversation.expiration_timestamp.as_deref(),
        Some("1750116480")
    );
    assert_eq!(
        conversation.origin.unwrap().kind.as_deref(),
        Some("marketing")
    );
    let pricing = sent.pricing.unwrap();
    assert_eq!(
        (
            pricing.billable,
            pricing.pricing_model.as_deref(),
            pricing.kind.as_deref()
        ),
        (Some(true), Some("PMP"), Some("regular"))
    );

    let failed = only_status("webhook_status_failed_131049.json");
    assert_eq!(failed.status, StatusKind::Failed);
    let error = &failed.errors()[0];
    assert_eq!(error.code, 131049);
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(
        error
            .error_data
            .as_ref()
            .unwrap()
            .details
            .as_deref()
            .unwrap()
            .contains("healthy ecosystem")
    );

    let tracked = only_status("webhook_status_sent_biz_opaque_callback_data.json");
    assert_eq!(
        tracked.biz_opaque_callback_data.as_deref(),
        Some("some data")
    );
    assert_eq!(
        only_status("webhook_status_played.json").status,
        StatusKind::Played
    );
    let minimal = only_status("webhook_status_v24_minimal.json");
    assert!(minimal.conversation.is_none() && minimal.pricing.is_none());
}

#[test]
fn value_level_errors_are_read_beside_metadata() {
    let value = messages_value("webhook_errors_value_level_130429.json");
    assert_eq!(value.metadata.phone_number_id, "106540352242922");
    let error = value.errors()[0].parsed().unwrap();
    assert_eq!(
        (error.code, error.class()),
        (130429, ErrorClass::RateLimited)
    );
}

#[test]
fn a_rejected_template_keeps_its_reason_and_rejection_info() {
    let notification = check_webhook(
        "webhook_template_status_update_rejected.json",
        &example("webhook_template_status_update_rejected.json"),
    );
    let (entry, change) = notification.changes().next().unwrap();
    assert_eq!(
        (entry.id.as_str(), entry.time),
        ("102290129340398", Some(1751247548))
    );
    let ChangeValue::TemplateStatus(update) = &change.value else {
        panic!("not a template status update")
    };
    assert_eq!(update.event, "REJECTED");
    assert_eq!(update.reason.as_deref(), Some("INVALID_FORMAT"));
    assert_eq!(
        update.message_template_id.as_ref().unwrap().to_string(),
        "1689556908129835"
    );
    let info = update.rejection_info.as_ref().unwrap();
    assert!(
        info.reason
            .as_deref()
            .unwrap()
            .starts_with("Your template has parameters")
    );
    assert!(
        info.recommendation
            .as_deref()
            .unwrap()
            .starts_with("Separate parameters")
    );
    assert_eq!(change.value.phone_number_id(), None);
}

#[test]
fn template_quality_and_category_updates_are_typed() {
    let quality = check_webhook(
        "webhook_template_quality_update.json",
        &example("webhook_template_quality_update.json"),
    );
    let ChangeValue::TemplateQuality(update) = &quality.changes().next().unwrap().1.value else {
        panic!("not a quality update")
    };
    assert_eq!(update.new_quality_score.as_deref(), Some("YELLOW"));
    let category = check_webhook(
        "webhook_template_category_update.json",
        &example("webhook_template_category_update.json"),
    );
    let ChangeValue::TemplateCategory(update) = &category.changes().next().unwrap().1.value else {
        panic!("not a category update")
    };
    assert_eq!(update.new_category.as_deref(), Some("MARKETING"));
    assert_eq!(
        update.message_template_id.as_ref().unwrap().as_u64(),
        Some(12345678)
    );
}

#[test]
fn smb_echoes_go_from_the_business_to_the_customer() {
    let name = "webhook_smb_message_echoes_text.json";
    let notification = check_webhook(name, &example(name));
    let (_, change) = notification.changes().next().unwrap();
    let ChangeValue::MessageEchoes(value) = &change.value else {
        panic!("not an echo")
    };
    assert_eq!(change.value.phone_number_id(), Some("1122334455667"));
    let echo = value.message_echoes()[0].parsed().unwrap();
    assert_eq!(
        echo.from.as_deref(),
        Some("<BUSINESS_DISPLAY_PHONE_NUMBER>")
    );
    assert_eq!(echo.to.as_deref(), Some("<WHATSAPP_USER_PHONE_NUMBER>"));
    assert_eq!(echo.extra["to_user_id"], json!("<BSUID>"));
    let MessageContent::Text(text) = echo.content().unwrap() else {
        panic!("not text")
    };
    assert_eq!(text.body, "Test message");
}

#[test]
fn inbound_message_kinds_expose_their_details() {
    let value = messages_value("webhook_message_text_ctwa_referral.json");
    assert_eq!(value.contact_name("16505551234"), Some("Sheena Nelson"));
    let referral = value.messages()[0]
        .parsed()
        .unwrap()
        .referral
        .clone()
        .unwrap();
    assert_eq!(referral.source_type.as_deref(), Some("ad"));
    assert!(referral.ctwa_clid.is_some());
    assert_eq!(
        referral.extra["welcome_message"]["text"],
        json!("Hi there! Let us know how we can help!")
    );

    let inquiry = only_message("webhook_message_text_product_inquiry_referred_product.json");
    let product = inquiry.context.unwrap().referred_product.unwrap();
    assert_eq!(product.product_retailer_id.as_deref(), Some("di9ozbzfi4"));

    assert!(only_message("webhook_message_text_frequently_forwarded.json").is_forwarded());
    assert!(!only_message("webhook_message_text.json").is_forwarded());

    let MessageContent::Audio(voice) = only_message("webhook_message_audio_voice.json")
        .content()
        .unwrap()
    else {
        panic!("not audio")
    };
    assert_eq!(voice.voice, Some(true));
    let MessageContent::Sticker(sticker) = only_message("webhook_message_sticker_animated.json")
        .content()
        .unwrap()
    else {
        panic!("not a sticker")
    };
    assert_eq!(sticker.animated, Some(true));
    let document = only_message("webhook_message_document.json")
        .content()
        .unwrap();
    assert_eq!(
        document.media().unwrap().filename.as_deref(),
        Some("receipt.pdf")
    );

    let MessageContent::Location(location) = only_message("webhook_message_location.json")
        .content()
        .unwrap()
    else {
        panic!("not a location")
    };
    assert_eq!(location.latitude.as_f64(), Some(37.44221496582));

    let MessageContent::Button(button) =
        only_message("webhook_message_button_template_quick_reply.json")
            .content()
            .unwrap()
    else {
        panic!("not a quick reply")
    };
    assert_eq!(button.payload.as_deref(), Some("Unsubscribe"));

    let MessageContent::Order(order) = only_message("webhook_message_order.json")
        .content()
        .unwrap()
    else {
        panic!("not an order")
    };
    let items = order.product_items.unwrap();
    assert_eq!(
        (items.len(), items[0].item_price.as_ref().unwrap().as_f64()),
        (2, Some(30.0))
    );

    let MessageContent::System(system) =
        only_message("webhook_message_system_user_changed_number.json")
            .content()
            .unwrap()
    else {
        panic!("not a system message")
    };
    assert_eq!(
        (system.kind.as_deref(), system.wa_id.as_deref()),
        (Some("user_changed_number"), Some("12195555358"))
    );

    let unsupported = only_message("webhook_message_unsupported.json");
    assert_eq!(unsupported.errors()[0].code, 131051);
    let MessageContent::Unsupported(what) = unsupported.content().unwrap() else {
        panic!("not unsupported")
    };
    assert_eq!(what.kind.as_deref(), Some("edit"));

    let MessageContent::Edit(edit) = only_message("webhook_message_edit.json").content().unwrap()
    else {
        panic!("not an edit")
    };
    let MessageContent::Image(image) = edit.message.content().unwrap() else {
        panic!("the edited content is not an image")
    };
    assert_eq!(image.caption.as_deref(), Some("Updated image caption"));

    let MessageContent::Revoke(revoke) = only_message("webhook_message_revoke.json")
        .content()
        .unwrap()
    else {
        panic!("not a revoke")
    };
    assert!(revoke.original_message_id.starts_with("wamid."));

    let contacts = messages_value("webhook_message_image_with_url_pywa.json");
    let contact = contacts.contacts()[0].parsed().unwrap();
    assert_eq!(contact.user_id.as_deref(), Some("US.13491208655302741918"));
}

#[test]
fn send_requests_build_the_documented_shapes() {
    let reply = SendMessageRequest::text("+16505551234", "You're welcome, Pablo!")
        .reply_to("wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTdCNTg5RjY1MEMyRjlGMjRGNgA=");
    assert_eq!(
        serde_json::to_value(&reply).unwrap(),
        example("send_text_reply_context_request.json")
    );
    assert_eq!(
        serde_json::to_value(MarkReadRequest::new(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
            true
        ))
        .unwrap(),
        example("send_typing_indicator_request.json")
    );

    let named: SendMessageRequest =
        serde_json::from_value(example("send_template_named_params_request.json")).unwrap();
    let OutboundContent::Template(template) = &named.content else {
        panic!("not a template")
    };
    let body = &template.components.as_ref().unwrap()[1];
    let names: Vec<&str> = body
        .parameters
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|p| p.parameter_name.as_deref())
        .collect();
    assert_eq!(names, ["number_of_guests", "day", "date", "time"]);

    for (name, kind) in [
        (
            "send_interactive_reply_buttons_request.json",
            InteractiveKind::Button,
        ),
        ("send_interactive_list_request.json", InteractiveKind::List),
        (
            "send_interactive_cta_url_request.json",
            InteractiveKind::CtaUrl,
        ),
        ("send_interactive_flow_request.json", InteractiveKind::Flow),
    ] {
        let request: SendMessageRequest = serde_json::from_value(example(name)).unwrap();
        let OutboundContent::Interactive(interactive) = request.content else {
            panic!("{name} is not interactive")
        };
        assert_eq!(interactive.kind, kind, "{name}");
    }
}

#[test]
fn an_unreadable_webhook_item_is_reported_where_it_sits() {
    let mut body = example("webhook_message_text.json");
    let messages = body
        .pointer_mut("/entry/0/changes/0/value/messages")
        .unwrap()
        .as_array_mut()
        .unwrap();
    messages.push(json!({"id": ["not", "a", "string"]}));
    let notification = Notification::from_value(body).unwrap();
    let value = match &notification.changes().next().unwrap().1.value {
        ChangeValue::Messages(value) => value.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(value.messages()[0], Item::Parsed(_)));
    assert!(matches!(value.messages()[1], Item::Malformed(_)));
    assert_eq!(
        notification.malformed()[0].location,
        "entry[0].changes[0].value.messages[1]"
    );
}
