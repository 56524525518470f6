//! Properties of the webhook parser and the signature check over generated input: arbitrary JSON
//! and mutations of Meta's example payloads never panic, unknown fields anywhere are tolerated, a
//! generated batch yields exactly its messages, and a signature holds only for its exact bytes.

use std::path::PathBuf;
use std::sync::OnceLock;

use cloudapi::signature::{self, SignatureError};
use cloudapi::webhook::{ChangeValue, Interactive, Item, MessageContent, Notification};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The webhook examples (`webhook_*.json`) from the repository's copy of Meta's payloads, read once.
fn webhook_examples() -> &'static [(String, Value)] {
    static EXAMPLES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/meta-examples");
        let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                name.starts_with("webhook_") && name.ends_with(".json")
            })
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                (name, value)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // An empty list would make every property below vacuous.
        assert!(found.len() > 20, "only {} webhook examples", found.len());
        found
    })
}

/// JSON pointers to every value inside `value` (the root is `""`), with whether each is an object.
fn pointers(value: &Value) -> Vec<(String, bool)> {
    fn walk(value: &Value, at: String, out: &mut Vec<(String, bool)>) {
        out.push((at.clone(), value.is_object()));
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
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
        // Words the parser branches on, so generated values reach its typed paths.
        prop::sample::select(vec![
            "messages",
            "statuses",
            "text",
            "image",
            "interactive",
            "nfm_reply",
            "button_reply",
            "reaction",
            "edit",
            "sent",
            "failed",
            "1749416383",
            "smb_message_echoes",
            "message_template_status_update",
        ])
        .prop_map(|word| Value::String(word.to_owned())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "entry",
                    "changes",
                    "field",
                    "value",
                    "metadata",
                    "phone_number_id",
                    "messages",
                    "statuses",
                    "contacts",
                    "errors",
                    "id",
                    "from",
                    "type",
                    "timestamp",
                    "status",
                    "text",
                    "body",
                    "x",
                ]),
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(
                map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// Reads every typed view a server reads, so that a panic anywhere in them shows.
fn read_everything(notification: &Notification) {
    let _ = notification.malformed();
    let _ = serde_json::to_value(notification).unwrap();
    for (_, change) in notification.changes() {
        let _ = (change.field(), change.value.phone_number_id());
        match &change.value {
            ChangeValue::Messages(value) => {
                let _ = value.contact_name("16505551234");
                for message in value.messages().iter().filter_map(Item::parsed) {
                    read_message(message);
                }
                for status in value.statuses().iter().filter_map(Item::parsed) {
                    let _ = (status.timestamp_secs(), status.to_value(), status.errors());
                }
            }
            ChangeValue::MessageEchoes(value) => {
                for message in value.message_echoes().iter().filter_map(Item::parsed) {
                    read_message(message);
                }
            }
            _ => {}
        }
    }
}

fn read_message(message: &cloudapi::webhook::Message) {
    let _ = (
        message.message_type(),
        message.type_object(),
        message.timestamp_secs(),
        message.errors(),
        message.is_forwarded(),
        message.to_value(),
    );
    match message.content() {
        Ok(MessageContent::Edit(edit)) => {
            let _ = edit.message.content();
        }
        Ok(MessageContent::Interactive(Interactive {
            nfm_reply: Some(reply),
            ..
        })) => {
            let _ = reply.response();
        }
        Ok(content) => {
            let _ = (
                content.kind(),
                content.media(),
                serde_json::to_value(&content),
            );
        }
        Err(_) => {}
    }
}

/// One byte-level edit of a body: overwrite, insert or delete at a position (taken modulo length).
#[derive(Debug, Clone)]
enum ByteEdit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        any::<usize>().prop_map(ByteEdit::Delete),
    ]
}

fn apply_edit(body: &mut Vec<u8>, edit: &ByteEdit) {
    if body.is_empty() {
        return;
    }
    match *edit {
        ByteEdit::Set(at, b) => {
            let at = at % body.len();
            body[at] = b;
        }
        ByteEdit::Insert(at, b) => body.insert(at % (body.len() + 1), b),
        ByteEdit::Delete(at) => {
            body.remove(at % body.len());
        }
    }
}

/// A message of one of the common types, with the given id.
fn message_strategy() -> impl Strategy<Value = Value> {
    let text = "[^\u{0}]{0,40}";
    prop_oneof![
        text.prop_map(|body| json!({"type": "text", "text": {"body": body}})),
        ("[0-9]{1,16}", "image/(jpeg|png)").prop_map(
            |(id, mime)| json!({"type": "image", "image": {"id": id, "mime_type": mime, "sha256": "abc"}})
        ),
        (text, "[^\u{0}]{0,4}").prop_map(
            |(id, emoji)| json!({"type": "reaction", "reaction": {"message_id": id, "emoji": emoji}})
        ),
        (-90.0f64..90.0, -180.0f64..180.0).prop_map(
            |(lat, lon)| json!({"type": "location", "location": {"latitude": lat, "longitude": lon}})
        ),
        text.prop_map(|title| json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": title}}})),
        Just(json!({"type": "brand_new_type", "brand_new_type": {"anything": [1, 2]}})),
    ]
}

fn messages_change(phone_number_id: &str, messages: Vec<Value>) -> Value {
    json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
        "messages": messages,
    }})
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_the_parser(value in arbitrary_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(notification) = Notification::parse(&body) {
            read_everything(&notification);
        }
        // The same inside an envelope, so arbitrary values reach entries and changes.
        let wrapped = json!({"object": "whatsapp_business_account", "entry": [value]});
        let notification = Notification::from_value(wrapped).unwrap();
        read_everything(&notification);
    }

    #[test]
    fn byte_mutations_of_the_examples_never_panic(
        example in any::<prop::sample::Index>(),
        edits in prop::collection::vec(byte_edit(), 1..8),
    ) {
        let (_, value) = example.get(webhook_examples());
        let mut body = serde_json::to_vec(value).unwrap();
        for edit in &edits {
            apply_edit(&mut body, edit);
        }
        if let Ok(notification) = Notification::parse(&body) {
            read_everything(&notification);
        }
    }

    #[test]
    fn replacing_any_part_of_an_example_never_panics_and_keeps_the_envelope(
        example in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        replacement in arbitrary_json(),
    ) {
        let (name, value) = example.get(webhook_examples());
        let spots = pointers(value);
        let (pointer, _) = at.get(&spots);
        let mut body = value.clone();
        *body.pointer_mut(pointer).unwrap() = replacement;
        match Notification::from_value(body) {
            Ok(notification) => read_everything(&notification),
            // Only the envelope itself or its `entry` array can make the whole body unreadable.
            Err(_) => prop_assert!(
                pointer.is_empty() || pointer == "/entry",
                "{name}: replacing {pointer} failed the whole body"
            ),
        }
    }

    #[test]
    fn unknown_fields_anywhere_in_an_example_are_tolerated_and_kept(
        example in any::<prop::sample::Index>(),
        additions in prop::collection::vec(
            (any::<prop::sample::Index>(), "x-[a-z_]{0,10}", arbitrary_json()),
            1..5,
        ),
    ) {
        let (name, value) = example.get(webhook_examples());
        let baseline = Notification::from_value(value.clone()).unwrap();
        let objects: Vec<String> = pointers(value)
            .into_iter()
            .filter_map(|(pointer, is_object)| is_object.then_some(pointer))
            .collect();
        let mut body = value.clone();
        for (at, key, extra) in additions {
            let Some(Value::Object(object)) = body.pointer_mut(at.get(&objects).as_str()) else {
                unreachable!("the pointer names an object of the example");
            };
            object.insert(key, extra);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        // What the sent bytes read as: serde_json may round a float's last bit, the same way each time.
        let sent: Value = serde_json::from_slice(&bytes).unwrap();
        let notification = Notification::parse(&bytes).unwrap();
        read_everything(&notification);
        prop_assert_eq!(
            notification.malformed().len(),
            baseline.malformed().len(),
            "{}: an unknown field made a part malformed", name
        );
        prop_assert_eq!(notification.changes().count(), baseline.changes().count());
        prop_assert_eq!(serde_json::to_value(&notification).unwrap(), sent, "{}", name);
    }

    #[test]
    fn a_generated_batch_of_n_messages_parses_to_exactly_those_n(
        groups in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(message_strategy(), 0..6), 1..4),
            1..4,
        ),
    ) {
        // Entries of changes of messages; every message gets a distinct id in sending order.
        let mut expected = Vec::new();
        let entry: Vec<Value> = groups
            .into_iter()
            .enumerate()
            .map(|(e, changes)| {
                let changes: Vec<Value> = changes
                    .into_iter()
                    .map(|messages| {
                        let messages = messages
                            .into_iter()
                            .map(|mut message| {
                                let id = format!("wamid.{}", expected.len());
                                message["id"] = json!(id);
                                message["from"] = json!("16505551234");
                                message["timestamp"] = json!("1749416383");
                                expected.push(id);
                                message
                            })
                            .collect();
                        messages_change("106540352242922", messages)
                    })
                    .collect();
                json!({"id": format!("waba-{e}"), "changes": changes})
            })
            .collect();
        let body = json!({"object": "whatsapp_business_account", "entry": entry});
        let notification = Notification::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        prop_assert!(notification.malformed().is_empty());
        let ids: Vec<String> = notification
            .changes()
            .filter_map(|(_, change)| match &change.value {
                ChangeValue::Messages(value) => Some(value.messages()),
                _ => None,
            })
            .flatten()
            .map(|item| item.parsed().unwrap().id.clone())
            .collect();
        prop_assert_eq!(ids, expected);
    }

    #[test]
    fn a_body_signed_with_its_secret_is_accepted(
        secret in prop::collection::vec(any::<u8>(), 0..80),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let header = signature::sign(&secret, &body);
        prop_assert_eq!(signature::verify(&secret, &body, Some(header.as_bytes())), Ok(()));
        prop_assert_eq!(signature::verify(&secret, &body, None), Err(SignatureError::Missing));
    }

    #[test]
    fn any_flipped_bit_of_the_body_the_secret_or_the_digest_is_rejected(
        secret in prop::collection::vec(any::<u8>(), 1..80),
        body in prop::collection::vec(any::<u8>(), 1..512),
        which in 0..3u8,
        bit in any::<prop::sample::Index>(),
    ) {
        let header = signature::sign(&secret, &body);
        let (mut secret_used, mut body_used) = (secret.clone(), body.clone());
        let mut digest = signature::parse_header(header.as_bytes()).unwrap();
        let flip = |bytes: &mut [u8]| {
            let at = bit.index(bytes.len() * 8);
            bytes[at / 8] ^= 1 << (at % 8);
        };
        match which {
            0 => flip(&mut body_used),
            1 => flip(&mut secret_used),
            _ => flip(&mut digest),
        }
        let header_used = format!("sha256={}", hex::encode(digest));
        let outcome = signature::verify(&secret_used, &body_used, Some(header_used.as_bytes()));
        // HMAC pads a short key with zeros, but a flipped bit still changes the padded key.
        prop_assert_eq!(outcome, Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_flipped_bit_of_the_header_is_accepted_only_when_it_changes_a_letters_case(
        body in prop::collection::vec(any::<u8>(), 0..256),
        bit in any::<prop::sample::Index>(),
    ) {
        let secret = b"app secret";
        let header = signature::sign(secret, &body).into_bytes();
        let mut flipped = header.clone();
        let at = bit.index(flipped.len() * 8);
        flipped[at / 8] ^= 1 << (at % 8);
        let outcome = signature::verify(secret, &body, Some(&flipped));
        // The prefix and the hex digits are read in either case; any other change is refused.
        prop_assert_eq!(outcome.is_ok(), flipped.eq_ignore_ascii_case(&header));
    }
}
