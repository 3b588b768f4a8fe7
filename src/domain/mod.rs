//! The nouns of paperboy as types that cannot hold bad values.

mod email;
mod links;
mod paper;
mod preferences;
pub mod report;
mod token;

pub use email::{SubscriberEmail, redact, redact_addresses};
pub use links::{Links, Purpose, Sent, Signer, same_secret};
pub use paper::{
    AnnouncedPaper, ArxivId, FeaturedPaper, FetchedPaper, arxiv_url, huggingface_url,
    normalize_whitespace, short_authors,
};
pub use preferences::{
    ARXIV_CATEGORIES, Categories, DEFAULT_TREND_WEIGHT, Frequency, PhraseList, PreferenceErrors,
    Preferences, PreferencesForm, WEEKDAYS,
};
pub use token::Token;
