//! What a subscriber wants: topics, categories, authors and a schedule.

use std::collections::HashSet;
use std::fmt;

use chrono_tz::Tz;
use serde::Deserialize;

/// The arXiv categories offered on the forms: the common homes of AI/ML papers.
pub const ARXIV_CATEGORIES: &[(&str, &str)] = &[
    ("cs.AI", "Artificial Intelligence"),
    ("cs.CL", "Computation and Language"),
    ("cs.CV", "Computer Vision"),
    ("cs.LG", "Machine Learning"),
    ("stat.ML", "Statistics — Machine Learning"),
    ("cs.NE", "Neural and Evolutionary Computing"),
    ("cs.RO", "Robotics"),
    ("cs.IR", "Information Retrieval"),
    ("cs.MA", "Multiagent Systems"),
    ("cs.HC", "Human-Computer Interaction"),
    ("cs.CR", "Cryptography and Security"),
    ("cs.SD", "Sound"),
    ("eess.AS", "Audio and Speech Processing"),
    ("eess.IV", "Image and Video Processing"),
];

pub const WEEKDAYS: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

const MAX_PHRASES: usize = 20;
const MAX_PHRASE_CHARS: usize = 100;

/// Free-text phrases (topics or author names), split on commas and newlines, trimmed,
/// whitespace folded, de-duplicated without regard to case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhraseList(Vec<String>);

impl PhraseList {
    /// Linear in the input and stops at the first phrase too many, so a huge or hostile
    /// form costs no more than a full one.
    pub fn parse(raw: &str, what: &str) -> Result<Self, String> {
        let too_many = || format!("Please list at most {MAX_PHRASES} {what}s.");
        // Room for every phrase at full length with generous separators and spaces.
        if raw.len() > MAX_PHRASES * (MAX_PHRASE_CHARS + 8) * 4 {
            return Err(too_many());
        }
        let mut out: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for part in raw.split([',', '\n', '\r', ';']) {
            let phrase = super::normalize_whitespace(part);
            if phrase.is_empty() {
                continue;
            }
            if phrase.chars().count() > MAX_PHRASE_CHARS {
                return Err(format!("Each {what} must be at most {MAX_PHRASE_CHARS} characters."));
            }
            if phrase.chars().any(char::is_control) {
                return Err(format!("A {what} contains characters we cannot use."));
            }
            if seen.insert(phrase.to_lowercase()) {
                if out.len() == MAX_PHRASES {
                    return Err(too_many());
                }
                out.push(phrase);
            }
        }
        Ok(Self(out))
    }

    pub fn from_stored(items: Vec<String>) -> Self {
        Self(items)
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }
}

/// arXiv categories from the offered list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categories(Vec<String>);

impl Categories {
    pub fn parse(raw: &[String]) -> Result<Self, String> {
        let mut out: Vec<String> = Vec::new();
        for c in raw.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            let Some((code, _)) = ARXIV_CATEGORIES.iter().find(|(k, _)| k.eq_ignore_ascii_case(c))
            else {
                return Err("Please choose categories from the list.".into());
            };
            if !out.iter().any(|o| o == code) {
                out.push((*code).to_string());
            }
        }
        Ok(Self(out))
    }

    pub fn from_stored(items: Vec<String>) -> Self {
        Self(items)
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Frequency {
    #[default]
    Daily,
    Weekly,
    /// No email: digests appear only in the subscriber's feed (and as web copies).
    Feed,
}

impl Frequency {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "daily" => Ok(Self::Daily),
            "weekly" => Ok(Self::Weekly),
            "feed" => Ok(Self::Feed),
            _ => Err("Please choose daily, weekly or feed only.".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Feed => "feed",
        }
    }

    /// Whether digests go out by email (a feed-only subscriber reads them in their feed).
    pub fn mailed(self) -> bool {
        self != Self::Feed
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber's validated preferences, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Preferences {
    pub topics: PhraseList,
    pub categories: Categories,
    pub authors: PhraseList,
    pub frequency: Frequency,
    /// ISO weekday of a weekly digest: 1 = Monday … 7 = Sunday.
    pub weekday: i16,
    /// Hour of the day (0–23), in `time_zone`, when the digest goes out.
    pub delivery_hour: i16,
    pub time_zone: Tz,
    pub papers_per_email: i32,
    pub min_upvotes: i32,
    /// 0–100: how much "what the field is reading" (upvotes) counts against "what matches me".
    pub trend_weight: i16,
}

/// The trend knob's default: matches lead, upvotes still lift a paper.
pub const DEFAULT_TREND_WEIGHT: i16 = 15;

impl Default for Preferences {
    fn default() -> Self {
        Self {
            topics: PhraseList::default(),
            categories: Categories::default(),
            authors: PhraseList::default(),
            frequency: Frequency::Daily,
            weekday: 1,
            delivery_hour: 7,
            time_zone: Tz::UTC,
            papers_per_email: 10,
            min_upvotes: 0,
            trend_weight: DEFAULT_TREND_WEIGHT,
        }
    }
}

/// The preferences form as posted: every field a string, so nothing the subscriber typed is
/// lost when the page is shown again with errors.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreferencesForm {
    pub topics: String,
    pub categories: Vec<String>,
    pub authors: String,
    pub frequency: String,
    pub weekday: String,
    pub delivery_hour: String,
    pub time_zone: String,
    pub papers_per_email: String,
    pub min_upvotes: String,
    pub trend_weight: String,
}

/// Messages per form field, shown next to the field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreferenceErrors(Vec<(&'static str, String)>);

impl PreferenceErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn messages(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, m)| m.as_str())
    }
}

fn int_in(raw: &str, range: std::ops::RangeInclusive<i32>) -> Option<i32> {
    raw.trim().parse::<i32>().ok().filter(|n| range.contains(n))
}

/// A whole-number field: blank takes the default; out of range or not a number adds the
/// field's message (and takes the default, so the other fields are still checked).
fn number(
    errors: &mut PreferenceErrors,
    raw: &str,
    range: std::ops::RangeInclusive<i32>,
    default: i32,
    field: &'static str,
    message: &str,
) -> i32 {
    if raw.trim().is_empty() {
        return default;
    }
    int_in(raw, range).unwrap_or_else(|| {
        errors.add(field, message);
        default
    })
}

impl PreferencesForm {
    /// The form pre-filled from stored preferences.
    pub fn from_preferences(p: &Preferences) -> Self {
        Self {
            topics: p.topics.items().join("\n"),
            categories: p.categories.items().to_vec(),
            authors: p.authors.items().join("\n"),
            frequency: p.frequency.as_str().into(),
            weekday: p.weekday.to_string(),
            delivery_hour: p.delivery_hour.to_string(),
            time_zone: p.time_zone.name().into(),
            papers_per_email: p.papers_per_email.to_string(),
            min_upvotes: p.min_upvotes.to_string(),
            trend_weight: p.trend_weight.to_string(),
        }
    }

    /// Validates every field; blank fields take the defaults.
    pub fn parse(&self) -> Result<Preferences, PreferenceErrors> {
        let d = Preferences::default();
        let mut errors = PreferenceErrors::default();
        let topics = PhraseList::parse(&self.topics, "topic")
            .map_err(|e| errors.add("topics", e))
            .unwrap_or_default();
        let authors = PhraseList::parse(&self.authors, "author")
            .map_err(|e| errors.add("authors", e))
            .unwrap_or_default();
        let categories = Categories::parse(&self.categories)
            .map_err(|e| errors.add("categories", e))
            .unwrap_or_default();
        let frequency = Frequency::parse(&self.frequency)
            .map_err(|e| errors.add("frequency", e))
            .unwrap_or_default();
        let weekday = number(
            &mut errors,
            &self.weekday,
            1..=7,
            d.weekday.into(),
            "weekday",
            "Please choose a day of the week.",
        ) as i16;
        let delivery_hour = number(
            &mut errors,
            &self.delivery_hour,
            0..=23,
            d.delivery_hour.into(),
            "delivery_hour",
            "Please choose an hour from 0 to 23.",
        ) as i16;
        let time_zone = match self.time_zone.trim() {
            "" => d.time_zone,
            tz => tz.parse::<Tz>().unwrap_or_else(|_| {
                errors.add("time_zone", "Please enter a time zone such as Europe/Berlin or UTC.");
                d.time_zone
            }),
        };
        let papers_per_email = number(
            &mut errors,
            &self.papers_per_email,
            1..=50,
            d.papers_per_email,
            "papers_per_email",
            "Please choose between 1 and 50 papers per email.",
        );
        let min_upvotes = number(
            &mut errors,
            &self.min_upvotes,
            0..=100_000,
            d.min_upvotes,
            "min_upvotes",
            "Minimum upvotes must be a whole number, 0 or more.",
        );
        let trend_weight = number(
            &mut errors,
            &self.trend_weight,
            0..=100,
            d.trend_weight.into(),
            "trend_weight",
            "Please choose a weight from 0 to 100.",
        ) as i16;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Preferences {
            topics,
            categories,
            authors,
            frequency,
            weekday,
            delivery_hour,
            time_zone,
            papers_per_email,
            min_upvotes,
            trend_weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_split_on_commas_and_newlines_and_fold_whitespace() {
        let p = PhraseList::parse("spiking  neural networks, diffusion\n\n Diffusion ,  ", "topic")
            .unwrap();
        assert_eq!(p.items(), ["spiking neural networks", "diffusion"]);
    }

    #[test]
    fn too_many_or_too_long_phrases_are_refused() {
        let many = (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>().join(",");
        assert!(PhraseList::parse(&many, "topic").unwrap_err().contains("at most 20"));
        assert!(PhraseList::parse(&"x".repeat(101), "topic").unwrap_err().contains("100"));
        // Twenty distinct phrases, repeated, are fine.
        let repeated = (0..200).map(|i| format!("t{}", i % 20)).collect::<Vec<_>>().join(",");
        assert_eq!(PhraseList::parse(&repeated, "topic").unwrap().items().len(), 20);
    }

    #[test]
    fn a_flood_of_phrases_is_refused_without_reading_it_all() {
        // 62 KB of three-letter phrases (it used to compare each with every earlier one).
        let flood = (0..15_500).map(|i| format!("{:03}", i % 1000)).collect::<Vec<_>>().join(",");
        assert!(PhraseList::parse(&flood, "topic").unwrap_err().contains("at most 20"));
    }

    #[test]
    fn categories_must_come_from_the_list() {
        let ok = Categories::parse(&["cs.lg".into(), "cs.LG".into(), "cs.CL".into()]).unwrap();
        assert_eq!(ok.items(), ["cs.LG", "cs.CL"]);
        assert!(Categories::parse(&["astro-ph".into()]).is_err());
    }

    #[test]
    fn a_blank_form_gives_the_defaults() {
        assert_eq!(PreferencesForm::default().parse().unwrap(), Preferences::default());
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let form = PreferencesForm {
            frequency: "hourly".into(),
            time_zone: "Mars/Olympus".into(),
            papers_per_email: "51".into(),
            delivery_hour: "24".into(),
            min_upvotes: "-1".into(),
            weekday: "8".into(),
            trend_weight: "101".into(),
            ..Default::default()
        };
        let errors = form.parse().unwrap_err();
        for field in [
            "frequency",
            "time_zone",
            "papers_per_email",
            "delivery_hour",
            "min_upvotes",
            "weekday",
            "trend_weight",
        ] {
            assert!(errors.get(field).is_some(), "no message for {field}");
        }
    }

    #[test]
    fn the_form_round_trips_stored_preferences() {
        let form = PreferencesForm {
            topics: "rlhf, mixture of experts".into(),
            categories: vec!["cs.CL".into()],
            authors: "Yann LeCun".into(),
            frequency: "weekly".into(),
            weekday: "5".into(),
            delivery_hour: "18".into(),
            time_zone: "Europe/Berlin".into(),
            papers_per_email: "5".into(),
            min_upvotes: "3".into(),
            trend_weight: "80".into(),
        };
        let prefs = form.parse().unwrap();
        assert_eq!(PreferencesForm::from_preferences(&prefs).parse().unwrap(), prefs);
        assert_eq!(prefs.time_zone, chrono_tz::Europe::Berlin);
    }
}
