//! Spawns paperboy as a subscriber meets it: a fresh database, a real port, a real SMTP server.

use std::collections::HashMap;
use std::time::Duration;

use paperboy::config::Settings;
use paperboy::startup::Application;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::smtp::{SmtpServer, url_path};

/// Where the test databases live; each test gets its own, dropped at the end.
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub const BASE_URL: &str = "http://paperboy.test";

/// A database created for one test and dropped (with any open connections) when done.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> Self {
        let name = format!("paperboy_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{}", postgres_url(), name);
        Self { name, url }
    }

    /// Where an app on this database keeps its generated secret.
    pub fn secret_file(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}.secret", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.secret_file());
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut c) =
                    PgConnection::connect(&format!("{}/postgres", postgres_url())).await
                {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    pub deliverer: std::sync::Arc<paperboy::digests::deliver::Deliverer>,
    pub settings: Settings,
    pub db: PgPool,
    pub smtp: SmtpServer,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Last, so the database is dropped after the app stopped using it.
    _database: TestDb,
}

/// Settings as an operator would give them, pointing at this test's database and SMTP.
pub fn test_settings(db: &TestDb, smtp_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("PAPERBOY_BIND".into(), "127.0.0.1:0".into()),
        ("PAPERBOY_BASE_URL".into(), BASE_URL.into()),
        ("PAPERBOY_SMTP_URL".into(), smtp_url.into()),
        ("PAPERBOY_MAIL_FROM".into(), "paperboy <digest@paperboy.test>".into()),
        ("PAPERBOY_RETRY_BASE_MS".into(), "200".into()),
        ("PAPERBOY_SCHEDULER".into(), "off".into()),
        // Literal ranking unless a test names a model: tests never reach the hub.
        ("PAPERBOY_EMBEDDING_MODEL".into(), "off".into()),
        ("PAPERBOY_SECRET_FILE".into(), db.secret_file().display().to_string()),
    ]);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Settings::from_lookup(|k| env.get(k).cloned()).expect("valid test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn(extra, true).await
}

/// The app without its background digest worker: only explicit sends deliver digests.
pub async fn spawn_app_for_sends(extra: &[(&str, &str)]) -> TestApp {
    spawn(extra, false).await
}

async fn spawn(extra: &[(&str, &str)], digest_worker: bool) -> TestApp {
    let smtp = SmtpServer::start().await;
    let database = TestDb::new();
    let settings = test_settings(&database, &smtp.url(), extra);
    let mut app = Application::build(settings.clone()).await.expect("app builds");
    if !digest_worker {
        app = app.without_digest_worker();
    }
    let deliverer = app.deliverer();
    let address = format!("http://{}", app.local_addr());
    let db = app.db();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestApp {
        address,
        settings,
        deliverer,
        db,
        smtp,
        client,
        shutdown,
        server: Some(server),
        _database: database,
    }
}

impl TestApp {
    /// A link from an email, pointed at this app.
    pub fn local(&self, link: &str) -> String {
        format!("{}{}", self.address, url_path(link))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{}", self.address, path)).send().await.expect("GET")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(format!("{}{}", self.address, path)).form(form).send().await.expect("POST")
    }

    pub async fn subscribe(&self, email: &str, topics: &str) -> reqwest::Response {
        self.post_form(
            "/subscribe",
            &[("email", email), ("topics", topics), ("frequency", "daily"), ("website", "")],
        )
        .await
    }

    /// Subscribes, follows the emailed link and confirms; returns the manage-token path
    /// of the preferences page.
    pub async fn subscribe_and_confirm(&self, email: &str, topics: &str) -> String {
        // Count first: the mail may arrive before the form's answer does.
        let n = self.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t == email)).count();
        assert_eq!(self.subscribe(email, topics).await.status(), 200);
        let mail = self.smtp.wait_for_mail_to(email, n + 1).await;
        let link = mail.link("/confirm/").expect("confirmation link");
        let page = self.client.post(self.local(&link)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let body = page.text().await.unwrap();
        extract_path(&body, "/preferences/").expect("a preferences link after confirming")
    }

    pub async fn status_of(&self, email: &str) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM subscribers WHERE email_key = lower($1)")
            .bind(email)
            .fetch_optional(&self.db)
            .await
            .unwrap()
    }

    /// Stops the app the way SIGTERM would and waits for it to finish.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The first `href` or bare path in a page that starts with `prefix`.
pub fn extract_path(body: &str, prefix: &str) -> Option<String> {
    let start = body.find(prefix)?;
    let rest = &body[start..];
    let end = rest.find(|c: char| c == '"' || c == '<' || c.is_whitespace()).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The app pointed at a local Hugging Face / arXiv stand-in.
pub async fn spawn_app_with_upstream(
    upstream: &crate::upstream::Upstream,
    extra: &[(&str, &str)],
) -> TestApp {
    let env = upstream.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    spawn_app_with(&all).await
}

/// Papers ingested from the fixtures: Hugging Face 2025-11-06 and 2025-11-07, and the
/// arXiv announcement of 2025-11-06.
pub async fn seed_papers(app: &TestApp, upstream: &crate::upstream::Upstream) {
    use paperboy::papers::ingest::{self, Sources, Trigger};
    let mut settings = app.settings.clone();
    settings.sources.hf_url = upstream.url.parse().unwrap();
    settings.sources.arxiv_url = format!("{}/rss", upstream.url).parse().unwrap();
    let sources = Sources::from_settings(&settings);
    for day in ["2025-11-06", "2025-11-07"] {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        ingest::huggingface(&app.db, &sources, day, Trigger::Cli).await.unwrap();
    }
    ingest::arxiv(&app.db, &sources, Trigger::Cli).await.unwrap();
}

/// An app ready to send digests (with these settings), its database holding the papers
/// of `seed_papers`; the fixture server must outlive the test.
pub async fn app_with_papers(extra: &[(&str, &str)]) -> (TestApp, crate::upstream::Upstream) {
    let up = crate::upstream::Upstream::start().await;
    let app = spawn_app_for_sends(extra).await;
    seed_papers(&app, &up).await;
    (app, up)
}

/// A confirmed subscriber with these preference fields (the rest as the form defaults them);
/// returns the path of their preferences page.
pub async fn subscriber(app: &TestApp, email: &str, prefs: &[(&str, &str)]) -> String {
    let path = app.subscribe_and_confirm(email, "").await;
    if !prefs.is_empty() {
        let res = app.post_form(&path, prefs).await;
        assert_eq!(res.status(), 200, "preferences for {email} were refused");
    }
    path
}

/// `paperboy send --date DATE`, in process, with this app's deliverer.
pub async fn send_edition(app: &TestApp, date: &str) -> paperboy::digests::plan::SendSummary {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    paperboy::digests::plan::send(&app.db, &app.deliverer, Some(day), 2, Default::default())
        .await
        .unwrap()
}

/// Opens the admin sign-in page as a browser would: the CSRF cookie it sets (as a
/// `Cookie` header value) and the form's CSRF field.
pub async fn login_form(client: &reqwest::Client, base: &str) -> (String, String) {
    let page = client.get(format!("{base}/admin/login")).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pb_login_csrf="))
        .expect("a sign-in CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let field = "name=\"csrf\" value=\"";
    let csrf = html.split(field).nth(1).expect("a csrf field").split('"').next().unwrap();
    (cookie, csrf.to_string())
}

/// The digests (not confirmations) received by `email`.
pub fn digests_to(app: &TestApp, email: &str) -> Vec<crate::smtp::Received> {
    app.smtp
        .messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == email) && m.header("x-paperboy-edition").is_some())
        .collect()
}

/// The paper ids of a digest, in order, from its text part.
pub fn paper_ids(mail: &crate::smtp::Received) -> Vec<String> {
    mail.text()
        .lines()
        .filter(|l| l.starts_with("   https://"))
        .map(|l| l.trim().rsplit('/').next().unwrap().to_string())
        .collect()
}

/// Waits until no queued transactional mail is left pending. A message is marked sent only
/// after the SMTP server took it, so from then on whatever was queued has arrived and
/// nothing more goes out: the signal to wait for before asserting that a mail was not sent.
pub async fn wait_for_empty_mail_queue(db: &PgPool) {
    wait_until("no queued mail left pending", Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outgoing_mail WHERE status = 'pending'")
            .fetch_one(db)
            .await
            .unwrap()
            == 0
    })
    .await;
}

/// Polls `check` until it holds; fails the test naming `what` after `within`.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, within, || {
        let held = check();
        async move { if held.await { Ok(()) } else { Err("") } }
    })
    .await
}

/// Polls `check` every 50 ms until it gives a value, and returns that; fails the test
/// naming `what`, and what the last `Err` said (if anything), after `within`.
pub async fn wait_for<T, E, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            let seen = if last.is_empty() { String::new() } else { format!("; last:\n{last}") };
            panic!("not within {within:?}: {what}{seen}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
