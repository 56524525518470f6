//! Webhook parsing: batches, tolerance of misfits and unknowns, and properties over arbitrary input.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn text_message(id: &str, body: &str) -> Value {
    json!({"from": "16505551234", "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": body}})
}

fn status(id: &str, status: &str) -> Value {
    json!({"id": id, "status": status, "timestamp": "1750030073", "recipient_id": "16505551234"})
}

fn messages_change(value: Value) -> Value {
    json!({"field": "messages", "value": value})
}

fn messages_value(phone_number_id: &str, key: &str, items: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
        key: items,
    })
}

fn parse(value: &Value) -> Notification {
    let body = serde_json::to_vec(value).unwrap();
    Notification::parse(&body).unwrap()
}

fn messages_of(notification: &Notification) -> Vec<&Item<Message>> {
    notification
        .changes()
        .filter_map(|(_, change)| match &change.value {
            ChangeValue::Messages(value) => Some(value.messages()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn parsed_message(value: Value) -> Message {
    match Item::<Message>::from_value(value) {
        Item::Parsed(message) => message,
        Item::Malformed(bad) => panic!("message did not parse: {bad}"),
    }
}

#[test]
fn a_batch_of_several_entries_and_changes_yields_every_item_in_order() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "waba-1", "changes": [
                messages_change(messages_value("111", "messages", vec![text_message("wamid.1", "one"), text_message("wamid.2", "two")])),
                messages_change(messages_value("111", "statuses", vec![status("wamid.s1", "delivered"), status("wamid.s2", "read")])),
            ]},
            {"id": "waba-2", "time": 1751247548, "changes": [
                messages_change(messages_value("222", "messages", vec![text_message("wamid.3", "three")])),
                {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 42, "reason": "NONE"}},
                {"field": "account_alerts", "value": {"alert": "something new"}},
            ]},
        ],
    });
    let notification = parse(&body);
    assert_eq!(serde_json::to_value(&notification).unwrap(), body);
    assert!(notification.malformed().is_empty());

    let fields: Vec<(&str, &str)> = notification
        .changes()
        .map(|(entry, change)| (entry.id.as_str(), change.field()))
        .collect();
    assert_eq!(
        fields,
        [
            ("waba-1", "messages"),
            ("waba-1", "messages"),
            ("waba-2", "messages"),
            ("waba-2", "message_template_status_update"),
            ("waba-2", "account_alerts"),
        ]
    );

    let wamids: Vec<&str> = messages_of(&notification)
        .iter()
        .map(|item| item.parsed().unwrap().id.as_str())
        .collect();
    assert_eq!(wamids, ["wamid.1", "wamid.2", "wamid.3"]);

    let statuses: Vec<(&str, &StatusKind)> = notification
        .changes()
        .filter_map(|(_, change)| match &change.value {
            ChangeValue::Messages(value) => Some(value.statuses()),
            _ => None,
        })
        .flatten()
        .map(|item| item.parsed().unwrap())
        .map(|status| (status.id.as_str(), &status.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("wamid.s1", &StatusKind::Delivered),
            ("wamid.s2", &StatusKind::Read)
        ]
    );

    let routed: Vec<Option<&str>> = notification
        .changes()
        .map(|(_, change)| change.value.phone_number_id())
        .collect();
    assert_eq!(routed, [Some("111"), Some("111"), Some("222"), None, None]);
    let ChangeValue::Other { field, value } = &notification.changes().nth(4).unwrap().1.value
    else {
        panic!("an unknown field is kept as Other");
    };
    assert_eq!(
        (field.as_str(), value),
        ("account_alerts", &json!({"alert": "something new"}))
    );
}

#[test]
fn an_unknown_message_type_is_kept_with_its_object() {
    let raw = json!({
        "from": "16505551234", "id": "wamid.H", "timestamp": "1749416383",
        "type": "hologram", "hologram": {"depth": 3, "colours": ["cyan"]},
    });
    let message = parsed_message(raw.clone());
    assert_eq!(message.message_type(), "hologram");
    assert_eq!(
        message.type_object(),
        Some(&json!({"depth": 3, "colours": ["cyan"]}))
    );
    assert_eq!(
        message.content().unwrap(),
        MessageContent::Unknown {
            kind: "hologram".to_owned(),
            value: Some(json!({"depth": 3, "colours": ["cyan"]})),
        }
    );
    assert_eq!(message.to_value(), raw);
}

#[test]
fn a_malformed_message_beside_a_good_one_still_yields_the_good_one() {
    let wrong_sender = json!({"from": 16505551234_u64, "id": "wamid.bad", "timestamp": "1", "type": "text", "text": {"body": "x"}});
    let wrong_content = json!({"from": "16505551234", "id": "wamid.odd", "timestamp": "1", "type": "text", "text": {"body": 7}});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [messages_change(
        messages_value("111", "messages", vec![wrong_sender.clone(), text_message("wamid.good", "fine"), wrong_content])
    )]}]});
    let notification = parse(&body);
    assert_eq!(
        serde_json::to_value(&notification).unwrap(),
        body,
        "nothing is lost, not even the misfit"
    );

    let messages = messages_of(&notification);
    assert_eq!(messages.len(), 3);
    let bad = messages[0]
        .malformed()
        .expect("a number where the sender goes is malformed");
    assert_eq!(bad.raw, wrong_sender);
    assert_eq!(
        messages[1].parsed().unwrap().content().unwrap(),
        MessageContent::Text(Text {
            body: "fine".to_owned(),
            extra: Extra::new()
        })
    );
    // A content object that does not fit spoils only the content: the wamid still counts.
    let odd = messages[2]
        .parsed()
        .expect("the message around a bad content object parses");
    assert_eq!(odd.id, "wamid.odd");
    assert!(matches!(odd.content(), Err(ContentError::Invalid { .. })));

    let malformed = notification.malformed();
    assert_eq!(malformed.len(), 1);
    assert_eq!(
        malformed[0].location,
        "entry[0].changes[0].value.messages[0]"
    );
}

#[test]
fn a_known_field_whose_value_does_not_fit_spoils_only_its_own_change() {
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "waba", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp", "messages": []}},
            {"value": {}},
            messages_change(messages_value("111", "messages", vec![text_message("wamid.ok", "ok")])),
        ]},
        "not an entry",
    ]});
    let notification = parse(&body);
    assert_eq!(serde_json::to_value(&notification).unwrap(), body);
    assert_eq!(messages_of(&notification).len(), 1);
    let locations: Vec<String> = notification
        .malformed()
        .into_iter()
        .map(|part| part.location)
        .collect();
    assert_eq!(
        locations,
        [
            "entry[0].changes[0].value",
            "entry[0].changes[1]",
            "entry[1]"
        ]
    );
}

#[test]
fn an_unknown_status_value_is_kept() {
    let raw = status("wamid.1", "deleted");
    let Item::Parsed(parsed) = Item::<Status>::from_value(raw.clone()) else {
        panic!("an unknown status value is no reason to fail");
    };
    assert_eq!(parsed.status, StatusKind::Other("deleted".to_owned()));
    assert_eq!(parsed.to_value(), raw);
    assert_eq!(parsed.timestamp_secs(), Some(1750030073));
}

#[test]
fn only_a_body_without_an_entry_array_is_an_envelope_error() {
    assert!(matches!(
        Notification::parse(b"{not json"),
        Err(EnvelopeError::NotJson(_))
    ));
    assert!(matches!(
        Notification::parse(b"[1, 2]"),
        Err(EnvelopeError::NotAnObject)
    ));
    assert!(matches!(
        Notification::parse(b"{\"object\": \"x\"}"),
        Err(EnvelopeError::NoEntryArray)
    ));
    assert!(matches!(
        Notification::parse(b"{\"entry\": {}}"),
        Err(EnvelopeError::NoEntryArray)
    ));

    let odd_object = json!({"object": 7, "entry": []});
    let notification = parse(&odd_object);
    assert_eq!(notification.object, None);
    assert_eq!(serde_json::to_value(&notification).unwrap(), odd_object);
}

#[test]
fn timestamps_stay_strings_and_read_as_seconds() {
    let message = parsed_message(text_message("wamid.1", "hi"));
    assert_eq!(message.timestamp_secs(), Some(1749416383));
    assert_eq!(message.to_value()["timestamp"], json!("1749416383"));
    let garbled = parsed_message(
        json!({"id": "w", "timestamp": "soon", "type": "text", "text": {"body": ""}}),
    );
    assert_eq!(garbled.timestamp_secs(), None);
    assert_eq!(
        garbled.from, None,
        "a message without `from` (a username-only customer) still parses"
    );
}

#[test]
fn a_known_type_without_its_object_reports_it_missing() {
    let message =
        parsed_message(json!({"from": "1", "id": "w", "timestamp": "1", "type": "interactive"}));
    assert!(
        matches!(message.content(), Err(ContentError::Missing { kind }) if kind == "interactive")
    );
}

/// Any JSON value, a few levels deep.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A webhook with one of each common part, to hang unknown keys on.
fn base_notification() -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [
            messages_change(json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "111"},
                "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
                "messages": [
                    {"from": "16505551234", "id": "wamid.1", "timestamp": "1", "type": "text",
                     "text": {"body": "hi"}, "context": {"from": "15550783881", "id": "wamid.0"}},
                    {"from": "16505551234", "id": "wamid.2", "timestamp": "1", "type": "image",
                     "image": {"id": "9", "mime_type": "image/jpeg"}},
                ],
            })),
            messages_change(json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "111"},
                "statuses": [{"id": "wamid.3", "status": "sent", "timestamp": "1", "recipient_id": "1",
                              "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"}}],
            })),
            {"field": "message_template_status_update", "value": {"event": "REJECTED", "rejection_info": {"reason": "r"}}},
        ]}],
    })
}

/// Where unknown keys can be hung in [`base_notification`], as JSON pointers to objects.
const OBJECT_POINTERS: &[&str] = &[
    "",
    "/entry/0",
    "/entry/0/changes/0",
    "/entry/0/changes/0/value",
    "/entry/0/changes/0/value/metadata",
    "/entry/0/changes/0/value/contacts/0",
    "/entry/0/changes/0/value/contacts/0/profile",
    "/entry/0/changes/0/value/messages/0",
    "/entry/0/changes/0/value/messages/0/text",
    "/entry/0/changes/0/value/messages/0/context",
    "/entry/0/changes/0/value/messages/1/image",
    "/entry/0/changes/1/value/statuses/0",
    "/entry/0/changes/1/value/statuses/0/pricing",
    "/entry/0/changes/2/value",
    "/entry/0/changes/2/value/rejection_info",
];

/// Reads everything a server would read, so that a panic anywhere in the typed views shows.
fn read_everything(notification: &Notification) {
    let _ = notification.malformed();
    for (_, change) in notification.changes() {
        let _ = change.value.phone_number_id();
        if let ChangeValue::Messages(value) = &change.value {
            let _ = value.contact_name("16505551234");
            for message in value.messages().iter().filter_map(Item::parsed) {
                let _ = (
                    message.content(),
                    message.timestamp_secs(),
                    message.to_value(),
                );
                if let Ok(MessageContent::Edit(edit)) = message.content() {
                    let _ = edit.message.content();
                }
                if let Ok(MessageContent::Interactive(Interactive {
                    nfm_reply: Some(reply),
                    ..
                })) = message.content()
                {
                    let _ = reply.response();
                }
            }
            for status in value.statuses().iter().filter_map(Item::parsed) {
                let _ = (status.timestamp_secs(), status.to_value());
            }
        }
    }
}

fn without_null_fields(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key, without_null_fields(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_null_fields).collect()),
        other => other,
    }
}

proptest! {
    #[test]
    fn unknown_keys_anywhere_survive_the_round_trip(
        additions in prop::collection::vec((0..OBJECT_POINTERS.len(), "x-.{0,10}", arbitrary_json()), 1..6)
    ) {
        let mut body = base_notification();
        for (at, key, value) in additions {
            let Some(Value::Object(object)) = body.pointer_mut(OBJECT_POINTERS[at]) else {
                panic!("{} is not an object", OBJECT_POINTERS[at]);
            };
            object.insert(key, value);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        // What Meta's bytes read as: serde_json may round a float's last bit, the same way each time.
        let sent: Value = serde_json::from_slice(&bytes).unwrap();
        let notification = Notification::parse(&bytes).unwrap();
        prop_assert_eq!(serde_json::to_value(&notification).unwrap(), sent);
        prop_assert!(notification.malformed().is_empty());
        let messages = messages_of(&notification);
        prop_assert_eq!(messages.len(), 2);
        for message in messages {
            let message = message.parsed().unwrap();
            let content = message.content().unwrap();
            prop_assert_eq!(Some(&serde_json::to_value(&content).unwrap()), message.type_object());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(notification) = Notification::parse(&body) {
            read_everything(&notification);
        }
    }

    #[test]
    fn arbitrary_json_in_any_slot_never_panics_and_is_kept(
        at in 0..OBJECT_POINTERS.len(),
        value in arbitrary_json(),
    ) {
        // Replacing a whole object (a message, a status, a change...) with anything at all.
        let mut body = base_notification();
        if let Some(slot) = body.pointer_mut(OBJECT_POINTERS[at]) {
            *slot = value;
        }
        match Notification::from_value(body.clone()) {
            Ok(notification) => {
                read_everything(&notification);
                // The one documented loss: `"key": null` on a known optional field reads as absent.
                prop_assert_eq!(
                    without_null_fields(serde_json::to_value(&notification).unwrap()),
                    without_null_fields(body)
                );
            }
            Err(_) => prop_assert_eq!(at, 0, "only the envelope itself can fail"),
        }
    }
}
