//! Background work that runs inside `serve`: workers (mail, digests) and the scheduler.

pub mod delivery;
pub mod mail_worker;
pub mod scheduler;
pub mod worker;
