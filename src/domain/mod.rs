//! The nouns of paperboy as types that cannot hold bad values.

mod email;
mod preferences;
mod token;

pub use email::SubscriberEmail;
pub use preferences::{
    ARXIV_CATEGORIES, Categories, Frequency, PhraseList, PreferenceErrors, Preferences,
    PreferencesForm, WEEKDAYS,
};
pub use token::Token;
