//! The worker runner (restarts a worker that fails or panics) and the scheduler of
//! periodic jobs.

pub mod scheduler;
pub mod worker;
