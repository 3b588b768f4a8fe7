//! A real SMTP server on loopback that captures what paperboy sends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::MessageParser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 550 at RCPT TO: a permanent refusal that is not about the address (policy), so
    /// not a bounce.
    RejectPermanent,
    /// 451 at RCPT TO: try again later.
    RejectTransient,
    /// 550 5.1.1 at RCPT TO quoting the address, as Postfix says "User unknown": a hard
    /// bounce.
    RejectUnknownUser,
    /// Accepts, but takes a second to answer the end of DATA.
    Slow,
    /// Accepts, taking this many milliseconds to answer the end of DATA.
    Delay(u64),
}

#[derive(Clone, Debug)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).expect("a parseable message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        self.parsed().body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed().body_html(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    /// The raw header value, unfolded, of the first header with this name.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ");
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The first link in the text part whose path starts with `prefix` (e.g. "/confirm/").
    pub fn link(&self, prefix: &str) -> Option<String> {
        self.text()
            .split_whitespace()
            .filter(|w| w.starts_with("http"))
            .find(|w| url_path(w).starts_with(prefix))
            .map(|w| w.trim_end_matches(['.', ',', '>', ')']).to_string())
    }

    pub fn message_id(&self) -> String {
        self.header("message-id").expect("a Message-ID")
    }

    /// The path of the preferences link (a digest's, a confirmation's answer's).
    pub fn manage_path(&self) -> String {
        url_path(&self.link("/preferences/").expect("a preferences link"))
    }

    /// The paper ids of a digest, in order, from its text part.
    pub fn paper_ids(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.starts_with("   https://"))
            .map(|l| l.trim().rsplit('/').next().unwrap().to_string())
            .collect()
    }

    /// The why-line of each paper of a digest, in order.
    pub fn why_lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Why: "))
            .map(String::from)
            .collect()
    }

    /// The "view in browser" link of a digest's text part, as a path.
    pub fn web_copy_path(&self) -> String {
        let text = self.text();
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("View in your browser: "))
            .expect("a web copy link in the text part");
        url_path(url.trim())
    }

    /// The rating links of a digest's text part, as paths: (paper, up, down).
    pub fn rating_paths(&self) -> Vec<(String, String, String)> {
        let text = self.text();
        let links = |label: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix(label))
                .map(|url| url_path(url.trim()))
                .collect()
        };
        let (ups, downs) = (links("More like this: "), links("Less like this: "));
        self.paper_ids()
            .into_iter()
            .zip(ups.into_iter().zip(downs))
            .map(|(id, (up, down))| (id, up, down))
            .collect()
    }
}

/// The path (with query) of an absolute URL.
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".into())
}

struct Shared {
    messages: Mutex<Vec<Received>>,
    arrived: Notify,
    mode: Mutex<Mode>,
    /// Messages whose DATA has been received but not yet answered (slow mode).
    begun: std::sync::atomic::AtomicUsize,
    /// Client connections not yet closed.
    open: std::sync::atomic::AtomicUsize,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Shared>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            mode: Mutex::new(Mode::Accept),
            begun: Default::default(),
            open: Default::default(),
        });
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                s.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(session(socket, s.clone()));
            }
        });
        Self { port, shared }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// How many messages a slow server has started to take.
    pub fn begun(&self) -> usize {
        self.shared.begun.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many client connections are open (a session ends once its client hung up and
    /// its message in progress, if any, has been taken).
    pub fn open_sessions(&self) -> usize {
        self.shared.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// The digests (not transactional mail) received so far.
    pub fn digests(&self) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.header("x-paperboy-edition").is_some()).collect()
    }

    /// The messages to this address so far, in the order they arrived.
    pub fn messages_to(&self, address: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }

    /// Waits until at least `n` messages arrived (panics after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.shared.arrived.notified();
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} message(s), got {}", self.messages().len());
            }
        }
    }

    /// Waits for the next message to this address.
    pub async fn wait_for_mail_to(&self, address: &str, nth: usize) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.shared.arrived.notified();
            let mine = self.messages_to(address);
            if mine.len() >= nth {
                return mine[nth - 1].clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no message #{nth} to {address}; have {}", mine.len());
            }
        }
    }
}

/// Counts a session as closed however it ends.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn session(socket: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _open = Open(shared.clone());
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 capture.test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut to = Vec::new();
    let mut from = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-capture.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            let addr = line[10..].trim().trim_start_matches('<');
            from = addr.split('>').next().unwrap_or_default().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO") {
            let mode = *shared.mode.lock().unwrap();
            match mode {
                Mode::Accept | Mode::Slow | Mode::Delay(_) => {
                    let addr = line[8..].trim().trim_start_matches(':').trim();
                    let addr = addr.trim_start_matches('<').split('>').next().unwrap_or_default();
                    to.push(addr.to_string());
                    b"250 ok\r\n"
                }
                Mode::RejectPermanent => b"550 5.7.1 message refused by policy\r\n",
                Mode::RejectUnknownUser => {
                    let addr = line[8..].trim().trim_start_matches(':').trim().to_string();
                    let reply =
                        format!("550 5.1.1 {addr}: Recipient address rejected: User unknown\r\n");
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                Mode::RejectTransient => b"451 4.3.0 try again later\r\n",
            }
        } else if upper.starts_with("DATA") {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut raw = Vec::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                let l = line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line);
                raw.extend_from_slice(l.as_bytes());
            }
            let delay = match *shared.mode.lock().unwrap() {
                Mode::Slow => Some(1000),
                Mode::Delay(ms) => Some(ms),
                _ => None,
            };
            if let Some(ms) = delay {
                shared.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            shared.messages.lock().unwrap().push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                raw,
            });
            shared.arrived.notify_waiters();
            b"250 queued\r\n"
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 ok\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
