//! Operators: admin accounts and sessions, and the dashboard's numbers.

pub mod admins;
pub mod stats;
