//! paperboy's integration tests: one binary, the app on real ports against a real
//! Postgres database per test and a real SMTP server that captures mail.

mod abuse;
mod admin;
mod binary;
mod bounces;
mod browser;
mod digests;
mod dkim;
mod embeddings;
mod examples;
mod front_door;
mod helpers;
mod ingest;
mod mail_delivery;
mod manage;
mod meaning;
mod pages;
mod pg_restart;
mod races;
mod ratings;
mod search;
mod smtp;
mod subscribe;
mod subscriber_web;
mod upstream;
