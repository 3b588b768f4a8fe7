//! Spawns paperboy as a subscriber meets it: a fresh database, a real port, a real SMTP
//! server. Everything a test does to the app goes through a method of `TestApp` (or of
//! `Admin`, signed in): the HTTP routes first, `paperboy::store` where no route shows it.

use std::collections::HashMap;
use std::time::Duration;

use paperboy::config::Settings;
use paperboy::startup::Application;
use paperboy::store::deliveries::DeliveryRow;
use reqwest::header::{COOKIE, SET_COOKIE};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::smtp::{Received, SmtpServer, url_path};
use crate::upstream::Upstream;

/// Where the test databases live; each test gets its own, dropped at the end.
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub const BASE_URL: &str = "http://paperboy.test";

/// The operator `ADMIN_ENV` creates.
pub const ADMIN_EMAIL: &str = "ops@paperboy.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Settings that give the app an operator who can sign in.
pub const ADMIN_ENV: [(&str, &str); 2] =
    [("PAPERBOY_ADMIN_EMAIL", ADMIN_EMAIL), ("PAPERBOY_ADMIN_PASSWORD", ADMIN_PASSWORD)];

/// `ADMIN_ENV`, then `extra`.
pub fn with_admin<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    [&ADMIN_ENV[..], extra].concat()
}

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
                    // Raw SQL: the test's throwaway database is the harness's, not the app's.
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

/// The app pointed at a local Hugging Face / arXiv stand-in (arXiv's query API included).
pub async fn spawn_app_with_upstream(up: &Upstream, extra: &[(&str, &str)]) -> TestApp {
    spawn(&upstream_env(up, extra), true).await
}

/// `extra` after the settings that point paperboy at the stand-in.
fn upstream_env<'a>(up: &'a Upstream, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    [&up.env()[..], extra].concat()
}

/// An app ready to send digests, pointed at a fresh stand-in (arXiv's query API
/// included), its database holding the Hugging Face papers of `days`.
pub async fn app_with_days(days: &[&str]) -> (TestApp, Upstream) {
    let up = Upstream::start().await;
    let app = spawn(&upstream_env(&up, &[]), false).await;
    for day in days {
        app.ingest_huggingface(&up, day).await;
    }
    (app, up)
}

/// An app ready to send digests (with these settings), its database holding the papers
/// of `TestApp::seed_papers`; the fixture server must outlive the test.
pub async fn app_with_papers(extra: &[(&str, &str)]) -> (TestApp, Upstream) {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(extra).await;
    app.seed_papers(&up).await;
    (app, up)
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

// --- HTTP -------------------------------------------------------------------------------

impl TestApp {
    /// A link from an email, pointed at this app.
    pub fn local(&self, link: &str) -> String {
        format!("{}{}", self.address, url_path(link))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{}", self.address, path)).send().await.expect("GET")
    }

    /// A page that must answer 200, as HTML.
    pub async fn get_page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(format!("{}{}", self.address, path)).form(form).send().await.expect("POST")
    }

    /// A form body as it is typed (a browser leaves commas unescaped; a mail client's
    /// one-click unsubscribe sends `List-Unsubscribe=One-Click`).
    pub async fn post_raw_form(&self, path: &str, body: impl Into<String>) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into())
            .send()
            .await
            .expect("POST")
    }

    /// Follows a link from an email, as a mail client (or its link scanner) opens it.
    pub async fn get_link(&self, link: &str) -> reqwest::Response {
        self.client.get(self.local(link)).send().await.expect("GET")
    }

    /// Presses the button of the page a link from an email opens (an empty POST).
    pub async fn post_link(&self, link: &str) -> reqwest::Response {
        self.client.post(self.local(link)).send().await.expect("POST")
    }
}

// --- A subscriber's journey ---------------------------------------------------------------

impl TestApp {
    pub async fn subscribe(&self, email: &str, topics: &str) -> reqwest::Response {
        self.post_form(
            "/subscribe",
            &[("email", email), ("topics", topics), ("frequency", "daily"), ("website", "")],
        )
        .await
    }

    /// The confirmation link of the `nth` message to `email` (waiting for it).
    pub async fn confirmation_link(&self, email: &str, nth: usize) -> String {
        let mail = self.smtp.wait_for_mail_to(email, nth).await;
        mail.link("/confirm/").unwrap_or_else(|| panic!("no confirmation link in mail #{nth}"))
    }

    /// Confirms through `link` (a confirmation link); returns the path of the preferences
    /// page the answer links.
    pub async fn confirm(&self, link: &str) -> String {
        let page = self.post_link(link).await;
        assert_eq!(page.status(), 200, "confirming {link}");
        let body = page.text().await.unwrap();
        extract_path(&body, "/preferences/").expect("a preferences link after confirming")
    }

    /// Confirms through the link of the newest confirmation that arrived for `email`
    /// (waiting for a first one); returns the path of the preferences page.
    pub async fn confirm_latest(&self, email: &str) -> String {
        self.smtp.wait_for_mail_to(email, 1).await;
        let link = self
            .smtp
            .messages_to(email)
            .iter()
            .rev()
            .find_map(|m| m.link("/confirm/"))
            .unwrap_or_else(|| panic!("no confirmation link to {email}"));
        self.confirm(&link).await
    }

    /// Subscribes, follows the emailed link and confirms; returns the manage-token path
    /// of the preferences page.
    pub async fn subscribe_and_confirm(&self, email: &str, topics: &str) -> String {
        // Count first: the mail may arrive before the form's answer does.
        let n = self.smtp.messages_to(email).len();
        assert_eq!(self.subscribe(email, topics).await.status(), 200);
        let link = self.confirmation_link(email, n + 1).await;
        self.confirm(&link).await
    }

    /// A confirmed subscriber with these preference fields (the rest as the form defaults
    /// them); returns the path of their preferences page.
    pub async fn subscriber(&self, email: &str, prefs: &[(&str, &str)]) -> String {
        let path = self.subscribe_and_confirm(email, "").await;
        if !prefs.is_empty() {
            let res = self.post_form(&path, prefs).await;
            assert_eq!(res.status(), 200, "preferences for {email} were refused");
        }
        path
    }

    /// Unsubscribes with the button of the page the preferences page links.
    pub async fn unsubscribe(&self, prefs: &str) -> reqwest::Response {
        self.post_form(&prefs.replace("/preferences/", "/unsubscribe/"), &[]).await
    }

    /// Undoes an unsubscribe with the button of the page an unsubscribe shows.
    pub async fn resubscribe(&self, prefs: &str) -> reqwest::Response {
        self.post_form(&prefs.replace("/preferences/", "/resubscribe/"), &[]).await
    }

    /// The subscriber's "download my data" file.
    pub async fn export_of(&self, prefs: &str) -> serde_json::Value {
        let res = self.get(&format!("{prefs}/export")).await;
        assert_eq!(res.status(), 200, "the export of {prefs}");
        res.json().await.unwrap()
    }

    /// The feed address the preferences page shows, as a path.
    pub async fn feed_path(&self, prefs: &str) -> String {
        let page = self.get_page(prefs).await;
        let url = page.split("id=\"feed_url\" type=\"text\" readonly value=\"").nth(1).unwrap();
        url_path(url.split('"').next().unwrap())
    }
}

// --- What the store says about a subscriber (no page shows it to a test by address) -------

impl TestApp {
    /// Every subscriber (up to 1,000), by address, as the operator's list shows them.
    pub async fn subscribers(&self) -> Vec<paperboy::store::subscribers::SubscriberListRow> {
        paperboy::store::subscribers::search(&self.db, "", None, "", "", 1000).await.unwrap()
    }

    /// The subscriber with this address, as the operator's subscriber search finds them.
    async fn listed(&self, email: &str) -> Option<paperboy::store::subscribers::SubscriberListRow> {
        let key = email.to_lowercase();
        let rows =
            paperboy::store::subscribers::search(&self.db, &key, None, "", "", 50).await.unwrap();
        rows.into_iter().find(|r| r.email_key == key)
    }

    pub async fn status_of(&self, email: &str) -> Option<String> {
        self.listed(email).await.map(|r| r.status.as_str().to_string())
    }

    pub async fn subscriber_id(&self, email: &str) -> uuid::Uuid {
        self.listed(email).await.unwrap_or_else(|| panic!("no subscriber {email}")).id
    }

    /// The topics and frequency stored for `email` (what digests use).
    pub async fn choices_of(&self, email: &str) -> (Vec<String>, String) {
        let row = self.listed(email).await.unwrap_or_else(|| panic!("no subscriber {email}"));
        (row.topics, row.frequency)
    }

    /// What happened to the subscriber, oldest first.
    pub async fn events_of(&self, email: &str) -> Vec<String> {
        let id = self.subscriber_id(email).await;
        let events = paperboy::store::subscribers::events(&self.db, id, None).await.unwrap();
        events.into_iter().rev().map(|e| e.kind).collect()
    }

    /// The subscriber's ratings, by paper: (paper, +1 or −1).
    pub async fn ratings_of(&self, email: &str) -> Vec<(String, i16)> {
        let id = self.subscriber_id(email).await;
        let rated = paperboy::store::ratings::of_subscriber(&self.db, id, None).await.unwrap();
        let mut ratings: Vec<(String, i16)> = rated.into_iter().map(|r| (r.0, r.2)).collect();
        ratings.sort();
        ratings
    }

    /// Every delivery, oldest first, as the operator's deliveries page lists them.
    pub async fn deliveries(&self) -> Vec<DeliveryRow> {
        let rows = paperboy::store::deliveries::listed(&self.db, None, 1000).await.unwrap();
        rows.into_iter().rev().collect()
    }
}

// --- Papers and digests -------------------------------------------------------------------

impl TestApp {
    /// `paperboy ingest --source huggingface --date DAY` from the stand-in, in process.
    pub async fn ingest_huggingface(&self, up: &Upstream, day: &str) {
        use paperboy::papers::ingest::{self, Sources, Trigger};
        let mut settings = self.settings.clone();
        settings.sources.hf_url = up.url.parse().unwrap();
        let sources = Sources::from_settings(&settings);
        ingest::huggingface(&self.db, &sources, date(day), Trigger::Cli).await.unwrap();
    }

    /// Papers ingested from the fixtures: Hugging Face 2025-11-06 and 2025-11-07, and the
    /// arXiv announcement of 2025-11-06.
    pub async fn seed_papers(&self, up: &Upstream) {
        use paperboy::papers::ingest::{self, Sources, Trigger};
        for day in ["2025-11-06", "2025-11-07"] {
            self.ingest_huggingface(up, day).await;
        }
        let mut settings = self.settings.clone();
        settings.sources.arxiv_url = format!("{}/rss", up.url).parse().unwrap();
        let sources = Sources::from_settings(&settings);
        ingest::arxiv(&self.db, &sources, Trigger::Cli).await.unwrap();
    }

    /// `paperboy send --date DATE`, in process, with this app's deliverer.
    pub async fn send_edition(&self, day: &str) -> paperboy::digests::plan::SendSummary {
        paperboy::digests::plan::send(
            &self.db,
            &self.deliverer,
            Some(date(day)),
            2,
            Default::default(),
        )
        .await
        .unwrap()
    }

    /// The daily edition of `day` planned: a delivery queued for every subscriber, as the
    /// scheduler does before anything is sent.
    pub async fn queue_edition(&self, day: &str) {
        let edition = paperboy::domain::Edition::daily(date(day));
        let id = paperboy::store::editions::ensure(&self.db, &edition).await.unwrap();
        paperboy::store::deliveries::create_for_edition(&self.db, id, &edition).await.unwrap();
    }

    /// The papers featured on `day`, most upvoted first (withdrawn ones left out), as the
    /// archive lists them.
    pub async fn featured_on(&self, day: &str) -> Vec<paperboy::store::papers::PaperCard> {
        paperboy::store::papers::featured_on(&self.db, date(day)).await.unwrap()
    }

    /// Every paper stored (up to 50; withdrawn ones too), as the operator's papers page
    /// lists them.
    pub async fn papers(&self) -> Vec<paperboy::store::papers::PaperRow> {
        paperboy::store::papers::search(&self.db, "").await.unwrap()
    }

    /// The ingest runs, newest first, as the dashboard lists them.
    pub async fn ingest_runs(&self) -> Vec<paperboy::store::ingest_runs::RunRow> {
        paperboy::store::ingest_runs::latest(&self.db, 1000).await.unwrap()
    }

    /// The digests (not confirmations) received by `email`.
    pub fn digests_to(&self, email: &str) -> Vec<Received> {
        self.smtp.digests().into_iter().filter(|m| m.to.iter().any(|t| t == email)).collect()
    }
}

// --- The operator -------------------------------------------------------------------------

impl TestApp {
    /// Posts the sign-in form as a browser does (with the form's CSRF cookie and field).
    pub async fn try_admin_login(&self, email: &str, password: &str) -> reqwest::Response {
        let (cookie, csrf) = login_form(&self.client, &self.address).await;
        self.client
            .post(format!("{}/admin/login", self.address))
            .header(COOKIE, cookie)
            .form(&[("email", email), ("password", password), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// Signs in as the operator of `ADMIN_ENV`.
    pub async fn admin_login(&self) -> Admin<'_> {
        let res = self.try_admin_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(res.status(), 303, "signing in");
        let cookie = set_cookie(&res, "pb_admin").expect("a session cookie");
        let cookie = cookie.split(';').next().unwrap().to_string();
        let mut admin = Admin { app: self, cookie, csrf: String::new() };
        admin.csrf = csrf_field(&admin.get_page("/admin").await);
        admin
    }
}

/// A signed-in operator: every request carries the session cookie, every form its CSRF field.
pub struct Admin<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

impl Admin<'_> {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(format!("{}{path}", self.app.address))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// A page that must answer 200, as HTML.
    pub async fn get_page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.unwrap()
    }

    /// Posts a form of the dashboard, with its CSRF field.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut all = form.to_vec();
        all.push(("csrf", self.csrf.as_str()));
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (a forged or stale form).
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.app
            .client
            .post(format!("{}{path}", self.app.address))
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// Opens the admin sign-in page as a browser would: the CSRF cookie it sets (as a
/// `Cookie` header value) and the form's CSRF field.
pub async fn login_form(client: &reqwest::Client, base: &str) -> (String, String) {
    let page = client.get(format!("{base}/admin/login")).send().await.unwrap();
    let cookie = set_cookie(&page, "pb_login_csrf").expect("a sign-in CSRF cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    (cookie, csrf_field(&page.text().await.unwrap()))
}

/// The `Set-Cookie` header that sets `name`, whole (with its attributes).
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value of a page's hidden `csrf` field.
fn csrf_field(html: &str) -> String {
    let field = "name=\"csrf\" value=\"";
    html.split(field).nth(1).expect("a csrf field").split('"').next().unwrap().to_string()
}

// --- Pages, dates, waiting ----------------------------------------------------------------

/// The first `href` or bare path in a page that starts with `prefix`.
pub fn extract_path(body: &str, prefix: &str) -> Option<String> {
    let start = body.find(prefix)?;
    let rest = &body[start..];
    let end = rest.find(|c: char| c == '"' || c == '<' || c.is_whitespace()).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The part of a page from `marker` (an `id="…"` or a heading) to the next `<section`, or
/// the end: e.g. `section(page, r#"id="preview""#)` of a preferences page.
pub fn section<'a>(page: &'a str, marker: &str) -> &'a str {
    let start = page.find(marker).unwrap_or_else(|| panic!("no {marker} in the page"));
    let rest = &page[start + marker.len()..];
    let end = rest.find("<section").unwrap_or(rest.len());
    &page[start..start + marker.len() + end]
}

/// A day as the CLI takes it (YYYY-MM-DD).
pub fn date(day: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap()
}

/// Waits until no queued transactional mail is left pending. A message is marked sent only
/// after the SMTP server took it, so from then on whatever was queued has arrived and
/// nothing more goes out: the signal to wait for before asserting that a mail was not sent.
pub async fn wait_for_empty_mail_queue(db: &PgPool) {
    wait_until("no queued mail left pending", Duration::from_secs(30), || async {
        paperboy::store::mail_queue::next_due(db).await.unwrap().is_none()
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

// --- Snapshots ----------------------------------------------------------------------------

/// insta settings that make a page or an email the same on every run and machine: the
/// tokens of links and forms, UUIDs, timestamps, durations and ports are replaced by
/// placeholders. Use as `let _s = snapshot_settings().bind_to_scope();`.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // Tokens in links: manage, confirm, web copy, feed, rating, reader links.
    settings.add_filter(
        r"/(preferences|unsubscribe|resubscribe|confirm|d|feed|rate|examples)/[A-Za-z0-9_-]{16,}",
        "/$1/[token]",
    );
    settings.add_filter(r"\?reader=[A-Za-z0-9_-]{16,}", "?reader=[token]");
    // Hidden form fields carrying a token (CSRF, the rating form's way back).
    settings.add_filter(r#"name="(csrf|back)" value="[^"]*""#, r#"name="$1" value="[token]""#);
    settings.add_filter(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]");
    // When things happened (today's date and time); the papers' own days stay.
    settings.add_filter(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?UTC|Z)?", "[time]");
    settings.add_filter(r"\b\d+ ms\b", "[n] ms");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    // The dashboard's chart labels name the last weeks' days.
    settings.add_filter(r">(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}<", ">[day]<");
    settings
}
