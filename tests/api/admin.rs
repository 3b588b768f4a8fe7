//! The operator's dashboard through HTTP: sign-in, sessions, CSRF, pages, actions, metrics.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::{
    TestApp, extract_path, seed_papers, send_edition, spawn_app_for_sends, spawn_app_with,
    subscriber, wait_until,
};
use crate::smtp::Mode;
use crate::upstream::Upstream;

const EMAIL: &str = "ops@paperboy.test";
const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn admin_env() -> Vec<(&'static str, &'static str)> {
    vec![("PAPERBOY_ADMIN_EMAIL", EMAIL), ("PAPERBOY_ADMIN_PASSWORD", PASSWORD)]
}

/// The value of a hidden `csrf` field in a page.
fn csrf_field(html: &str) -> String {
    let start =
        html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub(crate) struct Admin<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

async fn try_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let page = app.get("/admin/login").await;
    let login_cookie = set_cookie(&page, "pb_login_csrf").unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    app.client
        .post(format!("{}/admin/login", app.address))
        .header(COOKIE, login_cookie.split(';').next().unwrap())
        .form(&[("email", email), ("password", password), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn login(app: &TestApp) -> Admin<'_> {
    let res = try_login(app, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&res, "pb_admin").expect("a session cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let mut admin = Admin { app, cookie, csrf: String::new() };
    let home = admin.get("/admin").await;
    assert_eq!(home.status(), 200);
    admin.csrf = csrf_field(&home.text().await.unwrap());
    admin
}

impl Admin<'_> {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(format!("{}{path}", self.app.address))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut all = form.to_vec();
        all.push(("csrf", self.csrf.as_str()));
        self.post_raw(path, &all).await
    }

    async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
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

#[tokio::test]
async fn sign_in_needs_the_right_password_and_sets_a_strict_cookie() {
    let app = spawn_app_with(&admin_env()).await;
    let wrong = try_login(&app, EMAIL, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "pb_admin").is_none());
    assert!(wrong.text().await.unwrap().contains("Wrong email or password"));
    let unknown = try_login(&app, "nobody@paperboy.test", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let ok = try_login(&app, EMAIL, PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/admin");
    let cookie = set_cookie(&ok, "pb_admin").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Max-Age="), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http base URL: no Secure flag");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_sessions").fetch_one(&app.db).await.unwrap();
    assert_eq!(stored, 1);
    let hash: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM admin_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(
        hash,
        cookie.split(';').next().unwrap().trim_start_matches("pb_admin=").as_bytes(),
        "only a hash is kept"
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let mut env = admin_env();
    env.push(("PAPERBOY_BASE_URL", "https://paperboy.example"));
    let app = spawn_app_with(&env).await;
    let ok = try_login(&app, EMAIL, PASSWORD).await;
    assert!(set_cookie(&ok, "pb_admin").unwrap().contains("Secure"));
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_actions_are_refused() {
    let app = spawn_app_with(&admin_env()).await;
    for page in [
        "/admin",
        "/admin/subscribers",
        "/admin/subscribers.csv",
        "/admin/papers",
        "/admin/runs",
        "/admin/deliveries",
    ] {
        let res = app.get(page).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(res.headers()[LOCATION], "/admin/login");
    }
    for action in [
        "/admin/ingest",
        "/admin/send",
        "/admin/deliveries/1/retry",
        "/admin/deliveries/retry-failed",
        "/admin/logout",
    ] {
        assert_eq!(
            app.post_form(action, &[("csrf", "x")]).await.status(),
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    // A made-up session is no session.
    let res = app
        .client
        .get(format!("{}/admin", app.address))
        .header(COOKIE, "pb_admin=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_admin_post_needs_the_csrf_token() {
    let app = spawn_app_with(&admin_env()).await;
    let admin = login(&app).await;
    for action in
        ["/admin/ingest", "/admin/send", "/admin/deliveries/retry-failed", "/admin/logout"]
    {
        assert_eq!(
            admin.post_raw(action, &[]).await.status(),
            StatusCode::FORBIDDEN,
            "{action} without a token"
        );
        assert_eq!(
            admin.post_raw(action, &[("csrf", "wrong")]).await.status(),
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    // The sign-in form has its own token.
    let res = app
        .post_form("/admin/login", &[("email", EMAIL), ("password", PASSWORD), ("csrf", "x")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Still signed in: the refused logout did nothing.
    assert_eq!(admin.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn logout_revokes_the_session_on_the_server() {
    let app = spawn_app_with(&admin_env()).await;
    let admin = login(&app).await;
    let res = admin.post("/admin/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The old cookie, replayed, no longer works.
    assert_eq!(admin.get("/admin").await.status(), StatusCode::SEE_OTHER);
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_sessions WHERE revoked_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_rate_limited() {
    let app = spawn_app_with(&admin_env()).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(try_login(&app, EMAIL, "guess").await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert_eq!(try_login(&app, EMAIL, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_pages_show_seeded_data() {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&admin_env()).await;
    seed_papers(&app, &up).await;
    subscriber(&app, "alice@example.com", &[("topics", "video generation")]).await;
    subscriber(&app, "bob@example.com", &[("topics", "tabular")]).await;
    app.subscribe("carol@example.com", "").await;
    send_edition(&app, "2025-11-06").await;
    let admin = login(&app).await;

    let overview = admin.get("/admin").await.text().await.unwrap();
    assert!(overview.contains("<svg"), "server-rendered charts");
    assert!(overview.contains("<polyline"), "with lines");
    assert!(
        overview.contains(">2</span><span class=\"label\">confirmed subscribers"),
        "counts by status"
    );
    assert!(overview.contains(">1</span><span class=\"label\">awaiting confirmation"));
    assert!(overview.contains("huggingface"), "the latest runs");

    let list = admin.get("/admin/subscribers?q=ALI").await.text().await.unwrap();
    assert!(list.contains("alice@example.com") && !list.contains("bob@example.com"));
    let by_status = admin.get("/admin/subscribers?status=pending").await.text().await.unwrap();
    assert!(by_status.contains("carol@example.com") && !by_status.contains("alice@example.com"));
    let by_topic = admin.get("/admin/subscribers?topic=tabular").await.text().await.unwrap();
    assert!(by_topic.contains("bob@example.com") && !by_topic.contains("alice@example.com"));

    let detail_path = extract_path(&list, "/admin/subscribers/").unwrap();
    let detail = admin.get(&detail_path).await.text().await.unwrap();
    assert!(detail.contains("video generation"));
    assert!(detail.contains("2025-11-06"), "delivery history");
    assert!(detail.contains("confirmed"), "events");
    let preview = admin.get(&format!("{detail_path}/preview")).await.text().await.unwrap();
    assert!(preview.contains("Next digest of"));

    let papers = admin.get("/admin/papers?q=tabular").await.text().await.unwrap();
    assert!(papers.contains("TabTune"));
    assert!(papers.contains("<td>1</td>"), "how many digests carried it");
    let runs = admin.get("/admin/runs").await.text().await.unwrap();
    assert!(runs.contains("arxiv") && runs.contains("2025-W45"));
    let sent = admin.get("/admin/deliveries?status=sent").await.text().await.unwrap();
    assert!(sent.contains("alice@example.com"));
    assert_eq!(admin.get("/admin/deliveries?status=bogus").await.status(), 400);
}

#[tokio::test]
async fn hostile_subscriber_data_is_escaped_on_admin_pages() {
    let app = spawn_app_with(&admin_env()).await;
    let prefs = subscriber(&app, "eve@example.com", &[]).await;
    app.post_form(&prefs, &[("topics", "<script>alert(1)</script>")]).await;
    let admin = login(&app).await;
    let list = admin.get("/admin/subscribers").await.text().await.unwrap();
    assert!(!list.contains("<script>alert(1)</script>"));
    assert!(list.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn the_csv_export_streams_every_subscriber() {
    let app = spawn_app_with(&admin_env()).await;
    subscriber(&app, "csv1@example.com", &[("topics", "=HYPERLINK(\"http://evil\"), agents")])
        .await;
    app.subscribe("csv2@example.com", "").await;
    let admin = login(&app).await;
    let res = admin.get("/admin/subscribers.csv").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let body = res.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        "email,status,frequency,topics,categories,authors,created_at,confirmed_at,unsubscribed_at"
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("csv1@example.com,confirmed,daily,"));
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"http://evil\"\"); agents\""),
        "formulas are defused: {}",
        lines[1]
    );
    assert!(lines[2].starts_with("csv2@example.com,pending"));
}

#[tokio::test]
async fn erasing_a_subscriber_keeps_only_anonymous_counts() {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&admin_env()).await;
    seed_papers(&app, &up).await;
    subscriber(&app, "gdpr@example.com", &[]).await;
    // The digest is refused with a reply that quotes the address.
    app.smtp.set_mode(Mode::RejectUnknownUser);
    send_edition(&app, "2025-11-06").await;
    let error: String =
        sqlx::query_scalar("SELECT last_error FROM deliveries").fetch_one(&app.db).await.unwrap();
    assert!(error.contains("gdpr@example.com"), "{error}");
    let admin = login(&app).await;
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM subscribers").fetch_one(&app.db).await.unwrap();
    // What they rated, and the taste it trained, go with them.
    sqlx::query(
        "INSERT INTO ratings (subscriber_id, arxiv_id, rating) VALUES ($1, '2511.03276', 1)",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO tastes (subscriber_id, model) VALUES ($1, '{}')")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(admin.post_raw(&format!("/admin/subscribers/{id}/delete"), &[]).await.status(), 403);
    let res = admin.post(&format!("/admin/subscribers/{id}/delete"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subscribers").fetch_one(&app.db).await.unwrap();
    assert_eq!(left, 0);
    let mail: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outgoing_mail").fetch_one(&app.db).await.unwrap();
    assert_eq!(mail, 0, "their emails are gone");
    let rated: i64 =
        sqlx::query_scalar("SELECT (SELECT count(*) FROM ratings) + (SELECT count(*) FROM tastes)")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(rated, 0, "their ratings and taste are gone");
    let (deliveries, anonymous): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE subscriber_id IS NULL) FROM deliveries",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((deliveries, anonymous), (1, 1), "the delivery counts, without the person");
    let error: String =
        sqlx::query_scalar("SELECT last_error FROM deliveries").fetch_one(&app.db).await.unwrap();
    assert!(!error.contains("gdpr"), "the address is gone from the SMTP reply: {error}");
    assert!(error.contains("550") && error.contains("<…@example.com>"), "{error}");
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM subscriber_events WHERE subscriber_id IS NULL ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    // (The "User unknown" refusal made them bounced before they were erased.)
    assert_eq!(kinds, ["subscribed", "confirmed", "bounced", "deleted"]);
    let csv = admin.get("/admin/subscribers.csv").await.text().await.unwrap();
    assert!(!csv.contains("gdpr@example.com"));
    assert_eq!(admin.post(&format!("/admin/subscribers/{id}/delete"), &[]).await.status(), 404);
}

#[tokio::test]
async fn a_failed_delivery_can_be_retried_from_the_dashboard() {
    let up = Upstream::start().await;
    let app = spawn_app_with(&admin_env()).await;
    seed_papers(&app, &up).await;
    subscriber(&app, "retry@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    // The send and the running worker share the work; either way the delivery fails.
    send_edition(&app, "2025-11-06").await;
    wait_for_status(&app, "failed").await;
    let admin = login(&app).await;
    let failed = admin.get("/admin/deliveries").await.text().await.unwrap();
    assert!(failed.contains("550"), "the SMTP reply is shown");
    let id: i64 = sqlx::query_scalar("SELECT id FROM deliveries").fetch_one(&app.db).await.unwrap();

    app.smtp.set_mode(Mode::Accept);
    let res = admin.post(&format!("/admin/deliveries/{id}/retry"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for_mail_to("retry@example.com", 2).await;
    assert_eq!(mail.header("x-paperboy-edition").as_deref(), Some("2025-11-06"));
    wait_for_status(&app, "sent").await;
}

async fn wait_for_status(app: &TestApp, wanted: &str) {
    wait_until(&format!("the delivery {wanted}"), Duration::from_secs(20), || async {
        let status: String =
            sqlx::query_scalar("SELECT status FROM deliveries").fetch_one(&app.db).await.unwrap();
        status == wanted
    })
    .await;
}

#[tokio::test]
async fn run_actions_start_ingests_and_sends() {
    let up = Upstream::start().await;
    let env = up.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend(admin_env());
    let app = spawn_app_with(&all).await;
    let admin = login(&app).await;
    assert_eq!(
        admin
            .post("/admin/ingest", &[("source", "huggingface"), ("date", "not-a-date")])
            .await
            .status(),
        400
    );
    let res =
        admin.post("/admin/ingest", &[("source", "huggingface"), ("date", "2025-11-06")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    wait_until("the admin's ingest succeeded", Duration::from_secs(10), || async {
        let runs: Vec<(String, String)> = sqlx::query_as("SELECT trigger, status FROM ingest_runs")
            .fetch_all(&app.db)
            .await
            .unwrap();
        runs.iter().any(|(t, s)| t == "admin" && s == "succeeded")
    })
    .await;
    subscriber(&app, "action@example.com", &[]).await;
    let res = admin.post("/admin/send", &[("date", "2025-11-06")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for_mail_to("action@example.com", 2).await;
    assert_eq!(mail.header("x-paperboy-edition").as_deref(), Some("2025-11-06"));
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&[]).await;
    seed_papers(&app, &up).await;
    subscriber(&app, "metrics@example.com", &[]).await;
    send_edition(&app, "2025-11-06").await;
    app.get("/").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let body = res.text().await.unwrap();
    for needle in [
        "# TYPE http_requests_total counter",
        "route=\"/\"",
        "http_request_duration_seconds_bucket",
        "paperboy_digests_sent_total",
        "paperboy_deliveries_pending",
        "paperboy_ingest_runs_total",
        "paperboy_subscribers{status=\"confirmed\"}",
    ] {
        assert!(body.contains(needle), "{needle} missing from\n{body}");
    }
    for line in body.lines().filter(|l| l.contains("/preferences/") || l.contains("/confirm/")) {
        assert!(line.contains("{token}"), "token paths never become labels: {line}");
    }
}

#[tokio::test]
async fn sessions_are_keyed_with_the_configured_secret() {
    use hmac::Mac;
    let mut env = admin_env();
    env.push(("PAPERBOY_SECRET", "an operator-chosen secret"));
    let app = spawn_app_with(&env).await;
    let res = try_login(&app, EMAIL, PASSWORD).await;
    let cookie = set_cookie(&res, "pb_admin").unwrap();
    let token = cookie.split(';').next().unwrap().trim_start_matches("pb_admin=");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"an operator-chosen secret").unwrap();
    mac.update(token.as_bytes());
    let expected = mac.finalize().into_bytes().to_vec();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM admin_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_send_started_from_the_dashboard_stops_cleanly_with_the_service() {
    let up = Upstream::start().await;
    let mut app = spawn_app_for_sends(&admin_env()).await;
    seed_papers(&app, &up).await;
    for i in 0..4 {
        subscriber(&app, &format!("stop{i}@example.com"), &[]).await;
    }
    let before = app.smtp.messages().len();
    app.smtp.set_mode(Mode::Delay(700));
    let admin = login(&app).await;
    let res = admin.post("/admin/send", &[("date", "2025-11-06")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // A digest is on the wire when the service is told to stop.
    wait_until("the send started", Duration::from_secs(20), || async { app.smtp.begun() > 0 })
        .await;
    let (db, smtp) = (app.db.clone(), app.smtp.clone());
    drop(admin);
    app.stop().await;
    // The stop waited for the digest in flight, and handed the rest back untouched.
    let delivered = smtp.messages().len() - before;
    assert!(delivered >= 1, "the digest in flight was finished");
    let (sent, pending, claimed): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE d.status = 'sent'),
                count(*) FILTER (WHERE d.status = 'pending'),
                count(q.claimed_by)
         FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(sent as usize, delivered, "every digest that went out is recorded as sent");
    assert_eq!(sent + pending, 4, "the others wait for the next run");
    assert_eq!(claimed, 0, "nothing is left claimed by the stopped process");
}
