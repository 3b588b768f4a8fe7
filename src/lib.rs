//! paperboy: personalised digests of the day's trending AI/ML papers, by email.
//!
//! Features live in folders: `papers` (sources and ingest), `subscribers` (the journey),
//! `ratings` (what readers teach), `digests` (plan, rank, render, deliver, read back),
//! `bounces`, `mail`, `operators`, `embeddings`. `domain` holds the nouns, `store` the SQL,
//! `web` the HTTP, `jobs` the runner and the scheduler.

pub mod background;
pub mod bounces;
pub mod cli;
pub mod config;
pub mod digests;
pub mod domain;
pub mod embeddings;
pub mod jobs;
pub mod mail;
pub mod operators;
pub mod papers;
pub mod ratings;
pub mod secret;
pub mod startup;
pub mod store;
pub mod subscribers;
pub mod telemetry;
pub mod web;
