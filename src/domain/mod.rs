//! The nouns of paperboy as types that cannot hold bad values.

mod edition;
mod email;
pub mod lexicon;
mod links;
mod paper;
mod preferences;
mod token;

pub use edition::Edition;
pub use email::{SubscriberEmail, redact, redact_addresses};
pub use links::{Links, Purpose, Sent, Signer, same_secret};
pub use paper::{
    AnnouncedPaper, ArxivId, Candidate, FeaturedPaper, FetchedPaper, RatedPaper, arxiv_url,
    huggingface_url, normalize_whitespace, short_authors,
};
pub use preferences::{
    ARXIV_CATEGORIES, Categories, DEFAULT_TREND_WEIGHT, Frequency, PhraseList, PreferenceErrors,
    Preferences, PreferencesForm, WEEKDAYS,
};
pub use token::Token;
