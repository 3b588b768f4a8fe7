//! Background work that runs inside `serve`: workers (mail, digests, embeddings) and the
//! scheduler.

pub mod delivery;
pub mod embedding;
pub mod mail_worker;
pub mod scheduler;
pub mod worker;
