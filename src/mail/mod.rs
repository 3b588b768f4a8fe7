//! Outgoing email: transports (SMTP pool or an outbox folder), and the messages we write.

mod messages;
pub mod outbox;
pub mod queue;
mod retry;
mod smtp_pool;
mod transport;

pub use messages::{Notice, SignupSummary, Subject};
pub use retry::RetryPolicy;
pub use transport::{Mailer, SendError};

/// A rendered message before it is addressed and sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub subject: String,
    pub text: String,
    pub html: String,
}
