//! paperboy: personalised digests of the day's trending AI/ML papers, by email.

pub mod admins;
pub mod bounces;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod domain;
pub mod embeddings;
pub mod examples;
pub mod ingest;
pub mod jobs;
pub mod library;
pub mod mail;
pub mod nearest;
pub mod ratings;
pub mod reading;
pub mod secret;
pub mod sending;
pub mod sources;
pub mod startup;
pub mod stats;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
pub mod web;
