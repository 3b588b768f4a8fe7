//! Editions: which papers a digest covers and how it is labelled.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};

use crate::domain::Frequency;

/// One digest issue: a paper day (daily) or the seven days ending on a day (weekly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edition {
    pub frequency: Frequency,
    /// The paper day, or the last day of the week covered.
    pub day: NaiveDate,
}

impl Edition {
    pub fn daily(day: NaiveDate) -> Self {
        Self { frequency: Frequency::Daily, day }
    }

    pub fn weekly(last_day: NaiveDate) -> Self {
        Self { frequency: Frequency::Weekly, day: last_day }
    }

    /// The edition a subscriber of this frequency gets for `day` (a feed-only subscriber gets the
    /// daily one).
    pub fn of(frequency: Frequency, day: NaiveDate) -> Self {
        match frequency {
            Frequency::Weekly => Self::weekly(day),
            Frequency::Daily | Frequency::Feed => Self::daily(day),
        }
    }

    /// The frequencies of the subscribers who get this edition.
    pub fn frequencies(&self) -> &'static [&'static str] {
        match self.frequency {
            Frequency::Weekly => &["weekly"],
            Frequency::Daily | Frequency::Feed => &["daily", "feed"],
        }
    }

    /// `2026-11-27` for a daily edition, the ISO week `2026-W48` of its last day for a weekly one.
    pub fn label(&self) -> String {
        match self.frequency {
            Frequency::Daily | Frequency::Feed => self.day.format("%Y-%m-%d").to_string(),
            Frequency::Weekly => {
                let w = self.day.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
        }
    }

    /// The first and last paper day covered, inclusive.
    pub fn period(&self) -> (NaiveDate, NaiveDate) {
        match self.frequency {
            Frequency::Daily | Frequency::Feed => (self.day, self.day),
            Frequency::Weekly => (self.day - Days::new(6), self.day),
        }
    }

    /// For subjects: "Thu, Nov 6" or "Oct 31 – Nov 6".
    pub fn title(&self) -> String {
        match self.frequency {
            Frequency::Daily | Frequency::Feed => self.day.format("%a, %b %-d").to_string(),
            Frequency::Weekly => {
                let (from, to) = self.period();
                format!("{} – {}", from.format("%b %-d"), to.format("%b %-d"))
            }
        }
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn labels_follow_the_contract() {
        assert_eq!(Edition::daily(d("2026-11-27")).label(), "2026-11-27");
        assert_eq!(Edition::weekly(d("2026-11-27")).label(), "2026-W48");
        // ISO weeks belong to the year of their Thursday.
        assert_eq!(Edition::weekly(d("2027-01-01")).label(), "2026-W53");
    }

    #[test]
    fn a_week_covers_seven_days_ending_on_its_day() {
        assert_eq!(Edition::weekly(d("2025-11-07")).period(), (d("2025-11-01"), d("2025-11-07")));
        assert_eq!(Edition::daily(d("2025-11-07")).period(), (d("2025-11-07"), d("2025-11-07")));
        assert_eq!(Edition::weekly(d("2025-11-07")).title(), "Nov 1 – Nov 7");
        assert_eq!(Edition::daily(d("2025-11-06")).title(), "Thu, Nov 6");
    }
}
