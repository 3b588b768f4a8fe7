//! Pooled SMTP connections with `TCP_NODELAY`, for `smtp://` servers (plain or STARTTLS).
//!
//! lettre writes a message body and its final `.` in separate writes; with Nagle's
//! algorithm on, the final write waits for the server's delayed ACK (~40 ms) on every
//! message. lettre's own transport gives no access to its socket, so for `smtp://` we open
//! the TCP connections ourselves and hand them to lettre's SMTP client.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use url::Url;

use super::SendError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartTls {
    Never,
    IfOffered,
    Required,
}

/// Where and how to connect, from an `smtp://user:pass@host:port?tls=…` URL.
#[derive(Clone, Debug)]
pub struct SmtpTarget {
    host: String,
    port: u16,
    starttls: StartTls,
    credentials: Option<(String, String)>,
}

impl SmtpTarget {
    /// `None` for anything but `smtp://` (lettre's transport handles `smtps://`).
    pub fn from_url(raw: &str) -> Result<Option<Self>, String> {
        let url = Url::parse(raw).map_err(|e| e.to_string())?;
        if url.scheme() != "smtp" {
            return Ok(None);
        }
        let host = url.host_str().ok_or("no host")?.trim_matches(['[', ']']).to_string();
        let starttls = match url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
            .as_deref()
        {
            None | Some("none") => StartTls::Never,
            Some("opportunistic") => StartTls::IfOffered,
            Some("required") => StartTls::Required,
            Some(other) => {
                return Err(format!("unknown tls={other} (none, opportunistic, required)"));
            }
        };
        let decode = |s: &str| percent_decode(s);
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), decode(url.password().unwrap_or_default())));
        Ok(Some(Self { host, port: url.port().unwrap_or(25), starttls, credentials }))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

pub struct SmtpPool {
    target: SmtpTarget,
    hello: ClientId,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    timeout: Duration,
}

/// A connection idle longer than this is checked with NOOP before use.
const CHECK_AFTER: Duration = Duration::from_secs(10);

impl SmtpPool {
    pub fn new(target: SmtpTarget, max_idle: usize, timeout: Duration) -> Self {
        Self { target, hello: ClientId::default(), idle: Mutex::new(Vec::new()), max_idle, timeout }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let t = &self.target;
        let refused = |e: std::io::Error| {
            SendError::Transient(format!("cannot connect to {}:{}: {e}", t.host, t.port))
        };
        let tcp =
            tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await.map_err(refused)?;
        tcp.set_nodelay(true).map_err(refused)?;
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
        let offered = conn.can_starttls();
        if t.starttls == StartTls::Required || (t.starttls == StartTls::IfOffered && offered) {
            let tls = TlsParameters::new(t.host.clone())?;
            conn.starttls(tls, &self.hello).await?;
        }
        if let Some((user, pass)) = &t.credentials {
            let credentials = Credentials::new(user.clone(), pass.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials).await?;
        }
        Ok(conn)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            let Some(mut idle) = idle else { return self.connect().await };
            if idle.conn.has_broken() {
                continue;
            }
            if idle.since.elapsed() < CHECK_AFTER || idle.conn.test_connected().await {
                return Ok(idle.conn);
            }
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.max_idle && !conn.has_broken() {
            idle.push(Idle { conn, since: Instant::now() });
        }
    }

    /// Sends one formatted message; a connection that failed is dropped, not reused.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let attempt = async {
            let mut conn = self.checkout().await?;
            match conn.send(envelope, message).await {
                Ok(_) => {
                    self.checkin(conn);
                    Ok(())
                }
                Err(e) => {
                    conn.abort().await;
                    Err(e.into())
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Transient(format!(
                "SMTP server did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_understood() {
        let t = SmtpTarget::from_url("smtp://user%40x:p%3Ass@mail.example:587?tls=required")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.starttls),
            ("mail.example", 587, StartTls::Required)
        );
        assert_eq!(t.credentials, Some(("user@x".into(), "p:ss".into())));
        let t = SmtpTarget::from_url("smtp://127.0.0.1:1025").unwrap().unwrap();
        assert_eq!((t.port, t.starttls, t.credentials), (1025, StartTls::Never, None));
        assert!(SmtpTarget::from_url("smtps://mail.example").unwrap().is_none());
        assert!(SmtpTarget::from_url("smtp://mail.example?tls=maybe").is_err());
    }
}
