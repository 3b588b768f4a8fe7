//! paperboy's integration tests: one binary, the app on real ports against a real
//! Postgres database per test and a real SMTP server that captures mail.

mod admin;
mod binary;
mod browser;
mod digests;
mod dkim;
mod helpers;
mod ingest;
mod mail_delivery;
mod manage;
mod pages;
mod smtp;
mod subscribe;
mod upstream;
