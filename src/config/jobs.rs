//! What `serve` runs on a schedule.

use super::{ConfigError, Env};

/// Parses a cron expression: five fields (minute … weekday), or six with seconds first.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr.trim())
        .map_err(|e| e.to_string())
}

/// What `serve` runs on a schedule.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Off: no scheduled ingests or digest runs (the workers still send what is queued).
    pub scheduler: bool,
    /// When `serve` ingests Hugging Face (today and yesterday, UTC).
    pub ingest_hf_cron: croner::Cron,
    /// When `serve` ingests the arXiv announcement.
    pub ingest_arxiv_cron: croner::Cron,
    /// How often `serve` looks for subscribers whose delivery hour has come.
    pub digest_cron: croner::Cron,
}

impl JobSettings {
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(JobSettings {
            scheduler: env.flag("PAPERBOY_SCHEDULER", true)?,
            ingest_hf_cron: env.cron("PAPERBOY_INGEST_HF_CRON", "*/30 * * * *")?,
            // arXiv announces Sunday–Thursday at 20:00 US Eastern: 01:30 UTC Monday–Friday.
            ingest_arxiv_cron: env.cron("PAPERBOY_INGEST_ARXIV_CRON", "30 1 * * 1-5")?,
            digest_cron: env.cron("PAPERBOY_DIGEST_CRON", "*/5 * * * *")?,
        })
    }
}
