//! A streaming CSV reader (RFC 4180: quoted fields, `""` inside quotes, CRLF or LF, a leading
//! byte-order mark): bytes go in as they arrive, whole records come out with the line they
//! started on. It holds one record at a time, so a file of any size reads in flat memory; a
//! record longer than [`MAX_RECORD_BYTES`] is reported and skipped rather than buffered.

/// The longest record kept; longer ones are skipped up to their end and reported.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// One record, or why the one starting at `line` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Fields { line: u64, fields: Vec<String> },
    Unreadable { line: u64, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: `"` again is an escaped quote, else it closed.
    QuoteInQuoted,
    /// Just after a CR ending a record (an LF may follow).
    AfterCr,
}

#[derive(Debug)]
pub struct CsvReader {
    state: State,
    field: Vec<u8>,
    fields: Vec<Vec<u8>>,
    record_bytes: usize,
    too_long: bool,
    /// Line of the byte being read (1-based), and the line the current record began on.
    line: u64,
    record_line: u64,
    /// Bytes of the file's start seen so far, to drop a UTF-8 byte-order mark.
    head: usize,
    stray_quote: bool,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    pub fn new() -> Self {
        Self {
            state: State::FieldStart,
            field: Vec::new(),
            fields: Vec::new(),
            record_bytes: 0,
            too_long: false,
            line: 1,
            record_line: 1,
            head: 0,
            stray_quote: false,
        }
    }

    /// Reads a chunk; complete records go to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Record>) {
        let mut bytes = chunk;
        while self.head < 3 && !bytes.is_empty() {
            const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
            if bytes[0] == BOM[self.head] {
                self.head += 1;
                bytes = &bytes[1..];
            } else {
                // Not a byte-order mark: whatever of one was dropped belongs to the data.
                let dropped = BOM[..self.head].to_vec();
                self.head = 3;
                for b in dropped {
                    self.byte(b, out);
                }
            }
        }
        for &b in bytes {
            self.byte(b, out);
        }
    }

    /// Ends the input: a last record without a line break is still a record.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        match self.state {
            State::FieldStart if self.fields.is_empty() && self.record_bytes == 0 => {}
            State::AfterCr => {}
            State::Quoted => {
                out.push(Record::Unreadable {
                    line: self.record_line,
                    reason: "a quoted field is never closed (a \" is missing)".into(),
                });
                self.reset();
            }
            _ => self.end_record(out),
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Record>) {
        if self.state == State::AfterCr {
            self.state = State::FieldStart;
            if b == b'\n' {
                return;
            }
        }
        if b == b'\n' {
            self.line += 1;
        }
        self.record_bytes += 1;
        match self.state {
            State::FieldStart => match b {
                b'"' => self.state = State::Quoted,
                b',' => self.end_field(),
                b'\n' => self.end_record(out),
                b'\r' => {
                    self.line += 1;
                    self.end_record(out);
                    self.state = State::AfterCr;
                }
                _ => {
                    self.push(b);
                    self.state = State::Unquoted;
                }
            },
            State::Unquoted => match b {
                b',' => {
                    self.end_field();
                    self.state = State::FieldStart;
                }
                b'\n' => {
                    self.end_record(out);
                    self.state = State::FieldStart;
                }
                b'\r' => {
                    self.line += 1;
                    self.end_record(out);
                    self.state = State::AfterCr;
                }
                b'"' => {
                    // A quote in the middle of an unquoted field: kept, but the row is suspect.
                    self.stray_quote = true;
                    self.push(b);
                }
                _ => self.push(b),
            },
            State::Quoted => match b {
                b'"' => self.state = State::QuoteInQuoted,
                _ => self.push(b),
            },
            State::QuoteInQuoted => match b {
                b'"' => {
                    self.push(b'"');
                    self.state = State::Quoted;
                }
                b',' => {
                    self.end_field();
                    self.state = State::FieldStart;
                }
                b'\n' => {
                    self.end_record(out);
                    self.state = State::FieldStart;
                }
                b'\r' => {
                    self.line += 1;
                    self.end_record(out);
                    self.state = State::AfterCr;
                }
                _ => {
                    self.stray_quote = true;
                    self.push(b);
                    self.state = State::Unquoted;
                }
            },
            State::AfterCr => {}
        }
    }

    fn push(&mut self, b: u8) {
        if self.record_bytes > MAX_RECORD_BYTES {
            self.too_long = true;
            return;
        }
        self.field.push(b);
    }

    fn end_field(&mut self) {
        let field = std::mem::take(&mut self.field);
        if !self.too_long {
            self.fields.push(field);
        }
    }

    fn end_record(&mut self, out: &mut Vec<Record>) {
        self.end_field();
        let line = self.record_line;
        let record = if self.too_long {
            Record::Unreadable {
                line,
                reason: format!("the row is longer than {MAX_RECORD_BYTES} bytes"),
            }
        } else if self.stray_quote {
            Record::Unreadable {
                line,
                reason: "a \" inside a field that is not quoted (quote the whole field and double the \")"
                    .into(),
            }
        } else {
            let fields: Result<Vec<String>, _> = std::mem::take(&mut self.fields)
                .into_iter()
                .map(String::from_utf8)
                .collect();
            match fields {
                Ok(fields) => Record::Fields { line, fields },
                Err(_) => Record::Unreadable {
                    line,
                    reason: "the row is not UTF-8 text (save the file as UTF-8)".into(),
                },
            }
        };
        out.push(record);
        self.reset();
    }

    fn reset(&mut self) {
        self.field.clear();
        self.fields.clear();
        self.record_bytes = 0;
        self.too_long = false;
        self.stray_quote = false;
        // A CR ending the record counted its line already; an LF did too.
        self.record_line = self.line;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<Record> {
        let mut reader = CsvReader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out);
        }
        reader.finish(&mut out);
        out
    }

    fn fields(line: u64, fields: &[&str]) -> Record {
        Record::Fields {
            line,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn quoted_fields_escaped_quotes_and_line_breaks_inside_quotes() {
        let out = read(&[b"\xEF\xBB\xBFphone,name\r\n+1 650,\"Lima, Ana\"\r\n2,\"say \"\"hi\"\"\nthere\"\n3,last"]);
        assert_eq!(
            out,
            vec![
                fields(1, &["phone", "name"]),
                fields(2, &["+1 650", "Lima, Ana"]),
                fields(3, &["2", "say \"hi\"\nthere"]),
                fields(5, &["3", "last"]),
            ]
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_the_rest_still_read() {
        let long = format!("1,{}\n", "x".repeat(MAX_RECORD_BYTES + 10));
        let input = [
            b"a,b\n1,ab\"c\n".as_slice(),
            long.as_bytes(),
            b"2,\xff\n3,ok\n4,\"open",
        ]
        .concat();
        let out = read(&[&input]);
        assert_eq!(out[0], fields(1, &["a", "b"]));
        assert!(
            matches!(out[1], Record::Unreadable { line: 2, .. }),
            "{:?}",
            out[1]
        );
        assert!(
            matches!(out[2], Record::Unreadable { line: 3, .. }),
            "{:?}",
            out[2]
        );
        assert!(
            matches!(out[3], Record::Unreadable { line: 4, .. }),
            "{:?}",
            out[3]
        );
        assert_eq!(out[4], fields(5, &["3", "ok"]));
        assert!(
            matches!(out[5], Record::Unreadable { line: 6, .. }),
            "{:?}",
            out[5]
        );
    }

    proptest! {
        /// However the bytes are split into chunks, the same records come out.
        #[test]
        fn chunking_never_changes_what_is_read(
            rows in prop::collection::vec(prop::collection::vec("[a-z ,\"\n]{0,8}", 1..4), 0..12),
            cuts in prop::collection::vec(0usize..400, 0..10),
        ) {
            let mut text = String::from("\u{feff}");
            for row in &rows {
                let quoted: Vec<String> = row.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
                text.push_str(&quoted.join(","));
                text.push_str("\r\n");
            }
            let bytes = text.as_bytes();
            let whole = read(&[bytes]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for p in points {
                chunks.push(&bytes[from..p.max(from)]);
                from = p.max(from);
            }
            chunks.push(&bytes[from..]);
            prop_assert_eq!(&read(&chunks), &whole);
            let expected: Vec<Vec<String>> = rows.clone();
            let got: Vec<Vec<String>> = whole.iter().map(|r| match r {
                Record::Fields { fields, .. } => fields.clone(),
                Record::Unreadable { reason, .. } => vec![reason.clone()],
            }).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
