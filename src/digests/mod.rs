//! Digests: which subscribers get which edition (`plan`), ranking each reader's papers
//! (`ranking`), rendering (`render`), sending (`deliver`, `workers`) and reading a sent
//! digest again (`read_back`).

pub mod deliver;
pub mod plan;
pub mod ranking;
pub mod read_back;
pub mod render;
pub mod workers;

pub use render::{DigestItem, DigestLinks};
