//! CSV export of a filtered list of contacts, written a page at a time as the client reads it,
//! in the columns an import reads back.

use bytes::Bytes;
use futures::Stream;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::store::Store;
use crate::store::contacts::{ContactDetailRow, ContactFilter};

/// Contacts read per query while exporting.
pub const EXPORT_PAGE: i64 = 500;

pub const HEADER: [&str; 11] = [
    "phone",
    "name",
    "email",
    "tags",
    "opt_in",
    "opt_in_reason",
    "source",
    "notes",
    "custom_fields",
    "created_at",
    "last_message_at",
];

/// The export as a stream of CSV chunks: the header, then one chunk per page of contacts.
pub fn stream(
    store: Store,
    tenant_id: String,
    filter: ContactFilter,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    enum Next {
        Header,
        After(Option<(i64, String)>),
        Done,
    }
    futures::stream::unfold(Next::Header, move |next| {
        let store = store.clone();
        let tenant_id = tenant_id.clone();
        let filter = filter.clone();
        async move {
            match next {
                Next::Header => {
                    let mut out = String::new();
                    push_record(&mut out, HEADER.iter().map(|h| (*h).to_owned()), false);
                    Some((Ok(Bytes::from(out)), Next::After(None)))
                }
                Next::After(before) => {
                    let page = match store
                        .search_contacts(&tenant_id, &filter, before, EXPORT_PAGE)
                        .await
                    {
                        Ok(page) => page,
                        Err(error) => {
                            tracing::warn!(error = %error, "contact export stopped: the database failed");
                            return Some((
                                Err(std::io::Error::other(error.to_string())),
                                Next::Done,
                            ));
                        }
                    };
                    if page.is_empty() {
                        return None;
                    }
                    let mut out = String::new();
                    for contact in &page {
                        push_record(&mut out, row(contact), true);
                    }
                    let next = if page.len() as i64 == EXPORT_PAGE {
                        Next::After(page.last().map(|c| (c.created_at, c.id.clone())))
                    } else {
                        Next::Done
                    };
                    Some((Ok(Bytes::from(out)), next))
                }
                Next::Done => None,
            }
        }
    })
}

fn row(contact: &ContactDetailRow) -> impl Iterator<Item = String> {
    let custom: Value = serde_json::from_str(&contact.custom_fields).unwrap_or(Value::Null);
    let custom = match custom {
        Value::Object(fields) if !fields.is_empty() => Value::Object(fields).to_string(),
        _ => String::new(),
    };
    [
        format!("+{}", contact.wa_id),
        contact.name.clone().unwrap_or_default(),
        contact.email.clone().unwrap_or_default(),
        contact.tags.join(", "),
        contact.opt_in.clone(),
        contact.opt_in_reason.clone().unwrap_or_default(),
        contact.source.clone(),
        contact.notes.clone().unwrap_or_default(),
        custom,
        rfc3339(contact.created_at),
        contact.last_message_at.map(rfc3339).unwrap_or_default(),
    ]
    .into_iter()
}

/// Appends one CSV record. With `guard`, a text field that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`) gets a leading `'`; the phone number (first) is left as is.
fn push_record(out: &mut String, fields: impl Iterator<Item = String>, guard: bool) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let field = if guard && i > 0 && field.starts_with(['=', '+', '-', '@']) {
            format!("'{field}")
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::super::csv::{CsvReader, Record};
    use super::*;

    #[test]
    fn fields_are_quoted_when_they_must_be_and_read_back_the_same() {
        let mut out = String::new();
        let fields = [
            "+4915112345678",
            "Lima, Ana",
            "say \"hi\"\nbye",
            "=SUM(A1)",
            "",
        ];
        push_record(&mut out, fields.iter().map(|f| (*f).to_owned()), true);
        let mut reader = CsvReader::new();
        let mut records = Vec::new();
        reader.feed(out.as_bytes(), &mut records);
        reader.finish(&mut records);
        assert_eq!(
            records,
            vec![Record::Fields {
                line: 1,
                fields: vec![
                    "+4915112345678".into(),
                    "Lima, Ana".into(),
                    "say \"hi\"\nbye".into(),
                    "'=SUM(A1)".into(),
                    String::new(),
                ],
            }]
        );
    }
}
