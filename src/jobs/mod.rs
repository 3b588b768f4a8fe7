//! Background work that runs inside `serve`: the mail worker (and, later, schedules).

pub mod delivery;
pub mod mail_worker;
pub mod scheduler;
