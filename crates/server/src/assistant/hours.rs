//! When the assistant answers: opening hours per weekday at a fixed UTC offset.
//!
//! `{"utc_offset": "+01:00", "days": {"mon": [["09:00", "18:00"]], "sat": [["10:00", "14:00"]]}}`;
//! a day left out is closed, and a range may pass midnight (`["22:00", "02:00"]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    pub utc_offset: String,
    /// Day name -> `[from, to]` ranges as "HH:MM".
    pub days: BTreeMap<String, Vec<[String; 2]>>,
}

impl OpeningHours {
    /// Reads the API's shape, saying exactly what is wrong.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let hours: OpeningHours = serde_json::from_value(value.clone()).map_err(|_| {
            "must be {\"utc_offset\": \"+01:00\", \"days\": {\"mon\": [[\"09:00\", \"18:00\"]], ...}}, or null to answer at any hour".to_owned()
        })?;
        offset_minutes(&hours.utc_offset)
            .ok_or("utc_offset must look like \"+01:00\", \"-05:30\" or \"Z\"")?;
        for (day, ranges) in &hours.days {
            if !DAYS.contains(&day.as_str()) {
                return Err(format!("days.{day} is not a day (use {})", DAYS.join(", ")));
            }
            for [from, to] in ranges {
                if minute_of_day(from).is_none() || minute_of_day(to).is_none() {
                    return Err(format!(
                        "days.{day} times must be \"HH:MM\" (00:00 to 24:00)"
                    ));
                }
            }
        }
        Ok(hours)
    }

    /// Whether `now_ms` (Unix milliseconds) falls in the hours.
    pub fn is_open(&self, now_ms: i64) -> bool {
        let offset = i64::from(offset_minutes(&self.utc_offset).unwrap_or(0));
        let local_minutes = now_ms.div_euclid(60_000) + offset;
        let minute = local_minutes.rem_euclid(24 * 60) as u32;
        // 1970-01-01 was a Thursday.
        let weekday = ((local_minutes.div_euclid(24 * 60) + 3).rem_euclid(7)) as usize;
        let yesterday = (weekday + 6) % 7;
        let ranges = |day: usize| self.days.get(DAYS[day]).into_iter().flatten();
        let within = |from: u32, to: u32, m: u32| m >= from && m < to;
        ranges(weekday).any(
            |[from, to]| match (minute_of_day(from), minute_of_day(to)) {
                (Some(f), Some(t)) if f <= t => within(f, t, minute),
                (Some(f), Some(_)) => minute >= f,
                _ => false,
            },
        ) || ranges(yesterday).any(
            |[from, to]| match (minute_of_day(from), minute_of_day(to)) {
                // Yesterday's range that passed midnight.
                (Some(f), Some(t)) if f > t => minute < t,
                _ => false,
            },
        )
    }
}

fn offset_minutes(offset: &str) -> Option<i32> {
    if offset == "Z" || offset == "+00:00" || offset == "-00:00" {
        return Some(0);
    }
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m) && hours.len() == 2 && minutes.len() == 2)
        .then_some(sign * (h * 60 + m))
}

fn minute_of_day(time: &str) -> Option<u32> {
    let (h, m) = time.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // 2026-12-07 is a Monday; 10:00 UTC.
    const MONDAY_10_UTC: i64 = 1_796_637_600_000;

    #[test]
    fn hours_hold_at_their_offset_and_across_midnight() {
        let hours = OpeningHours::parse(&json!({
            "utc_offset": "+02:00",
            "days": {"mon": [["09:00", "13:00"]], "sun": [["22:00", "02:00"]]}
        }))
        .expect("valid");
        // 12:00 local on Monday.
        assert!(hours.is_open(MONDAY_10_UTC));
        // 15:00 local on Monday.
        assert!(!hours.is_open(MONDAY_10_UTC + 3 * 3_600_000));
        // 01:00 local on Monday: Sunday's late range.
        assert!(hours.is_open(MONDAY_10_UTC - 11 * 3_600_000));
        // 03:00 local on Monday.
        assert!(!hours.is_open(MONDAY_10_UTC - 9 * 3_600_000));
    }

    #[test]
    fn bad_hours_say_what_to_fix() {
        let err = OpeningHours::parse(&json!({"utc_offset": "CET", "days": {}})).unwrap_err();
        assert!(err.contains("utc_offset"));
        let err =
            OpeningHours::parse(&json!({"utc_offset": "Z", "days": {"monday": []}})).unwrap_err();
        assert!(err.contains("days.monday"));
        let err =
            OpeningHours::parse(&json!({"utc_offset": "Z", "days": {"mon": [["9", "18:00"]]}}))
                .unwrap_err();
        assert!(err.contains("HH:MM"));
    }
}
