//! Subscribers: the journey (sign up, confirm, manage, leave), the batched sign-up writer,
//! and the data export.

pub mod export;
pub mod journey;
pub mod manage;
pub mod signups;
