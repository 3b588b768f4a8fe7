//! When a message that failed for a passing reason is tried again.

use std::time::Duration;

/// Retries for transient failures (4xx replies, connection errors), shared by
/// transactional mail and digests.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: i32,
}

impl RetryPolicy {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self { base: settings.mail.retry_base, max_attempts: settings.mail.max_attempts }
    }

    /// Delay before the next try after `attempts` failed ones: base·2^(attempts-1), at most 6 h.
    pub fn delay(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.clamp(1, 30) as u32 - 1);
        self.base.saturating_mul(factor).min(Duration::from_secs(6 * 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy { base: Duration::from_secs(30), max_attempts: 8 };
        assert_eq!(p.delay(1), Duration::from_secs(30));
        assert_eq!(p.delay(2), Duration::from_secs(60));
        assert_eq!(p.delay(4), Duration::from_secs(240));
        assert_eq!(p.delay(40), Duration::from_secs(6 * 3600));
    }
}
