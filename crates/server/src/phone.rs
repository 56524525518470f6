//! Phone numbers as people write them (`+1 (650) 555-1234`, `0049 30 1234567`), parsed into the
//! digits WhatsApp uses as a `wa_id`: E.164 without the plus.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number is required")]
    Empty,
    #[error(
        "a phone number may contain only digits, spaces, dashes, dots, parentheses and a leading + or 00"
    )]
    InvalidCharacters,
    #[error("a phone number in international form has 7 to 15 digits including the country code")]
    WrongLength,
}

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
                _ => return Err(PhoneNumberError::InvalidCharacters),
            }
        }
        // `00` is the international call prefix in most of the world: 0049… is +49….
        let digits = if !trimmed.starts_with('+') {
            digits
                .strip_prefix("00")
                .map(str::to_owned)
                .unwrap_or(digits)
        } else {
            digits
        };
        if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneNumberError::WrongLength);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ways_of_writing_a_number_give_its_digits() {
        for (input, digits) in [
            ("+1 (650) 555-1234", "16505551234"),
            ("16505551234", "16505551234"),
            ("0049 30 1234567", "49301234567"),
            ("+49-30-123.4567", "49301234567"),
            (" +44 20 7946 0958 ", "442079460958"),
        ] {
            assert_eq!(
                PhoneNumber::parse(input).unwrap().as_str(),
                digits,
                "{input}"
            );
        }
    }

    #[test]
    fn things_that_cannot_be_numbers_are_refused() {
        assert_eq!(PhoneNumber::parse(""), Err(PhoneNumberError::Empty));
        assert_eq!(
            PhoneNumber::parse("call me"),
            Err(PhoneNumberError::InvalidCharacters)
        );
        assert_eq!(
            PhoneNumber::parse("12345"),
            Err(PhoneNumberError::WrongLength)
        );
        assert_eq!(
            PhoneNumber::parse("1234567890123456"),
            Err(PhoneNumberError::WrongLength)
        );
        assert_eq!(
            PhoneNumber::parse("030 1234567"),
            Err(PhoneNumberError::WrongLength)
        );
    }
}
