//! The operator's dashboard through HTTP: sign-in, sessions, CSRF, pages, actions, metrics.

use std::time::Duration;

use paperboy::store::deliveries::DeliveryStatus;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};

use crate::helpers::{
    ADMIN_EMAIL as EMAIL, ADMIN_ENV, ADMIN_PASSWORD as PASSWORD, TestApp, app_with_papers,
    extract_path, section, set_cookie, snapshot_settings, spawn_app_with, spawn_app_with_upstream,
    wait_until, with_admin,
};
use crate::smtp::Mode;
use crate::upstream::Upstream;

#[tokio::test]
async fn sign_in_needs_the_right_password_and_sets_a_strict_cookie() {
    let app = spawn_app_with(&ADMIN_ENV).await;
    let wrong = app.try_admin_login(EMAIL, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "pb_admin").is_none());
    assert!(wrong.text().await.unwrap().contains("Wrong email or password"));
    let unknown = app.try_admin_login("nobody@paperboy.test", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let ok = app.try_admin_login(EMAIL, PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/admin");
    let cookie = set_cookie(&ok, "pb_admin").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Max-Age="), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http base URL: no Secure flag");
    // Raw SQL: what the table keeps at rest is the point, and no interface shows it.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM admin_sessions")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "one session");
    assert_ne!(
        stored[0],
        cookie.split(';').next().unwrap().trim_start_matches("pb_admin=").as_bytes(),
        "only a hash is kept"
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app =
        spawn_app_with(&with_admin(&[("PAPERBOY_BASE_URL", "https://paperboy.example")])).await;
    let ok = app.try_admin_login(EMAIL, PASSWORD).await;
    assert!(set_cookie(&ok, "pb_admin").unwrap().contains("Secure"));
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_actions_are_refused() {
    let app = spawn_app_with(&ADMIN_ENV).await;
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
    let app = spawn_app_with(&ADMIN_ENV).await;
    let admin = app.admin_login().await;
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
    let app = spawn_app_with(&ADMIN_ENV).await;
    let admin = app.admin_login().await;
    let res = admin.post("/admin/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The old cookie, replayed (as a copy kept by someone else would be), no longer works:
    // the server revoked the session, not just the browser's cookie.
    assert_eq!(admin.get("/admin").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.get("/admin/subscribers.csv").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_rate_limited() {
    let app = spawn_app_with(&ADMIN_ENV).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(app.try_admin_login(EMAIL, "guess").await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert_eq!(app.try_admin_login(EMAIL, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_pages_show_seeded_data() {
    let (app, _up) = app_with_papers(&ADMIN_ENV).await;
    app.subscriber("alice@example.com", &[("topics", "video generation")]).await;
    app.subscriber("bob@example.com", &[("topics", "tabular")]).await;
    app.subscribe("carol@example.com", "").await;
    app.send_edition("2025-11-06").await;
    let admin = app.admin_login().await;
    let _snapshots = snapshot_settings().bind_to_scope();

    // The overview: counts by status, server-rendered charts, deliverability, the latest
    // runs (the four ingests) and editions, the run buttons.
    let overview = admin.get_page("/admin").await;
    insta::assert_snapshot!("admin_overview", overview);
    assert_eq!(overview.matches("<polyline").count(), 10, "four charts, their lines");
    let runs = section(&overview, "<h2>Latest runs</h2>");
    assert_eq!(runs.matches("<td>huggingface</td>").count(), 2, "the latest runs: {runs}");
    assert_eq!(runs.matches("<td>arxiv</td>").count(), 1, "{runs}");

    let list = admin.get_page("/admin/subscribers?q=ALI").await;
    assert!(list.contains("alice@example.com") && !list.contains("bob@example.com"));
    let by_status = admin.get_page("/admin/subscribers?status=pending").await;
    assert!(by_status.contains("carol@example.com") && !by_status.contains("alice@example.com"));
    let by_topic = admin.get_page("/admin/subscribers?topic=tabular").await;
    assert!(by_topic.contains("bob@example.com") && !by_topic.contains("alice@example.com"));

    // A subscriber's page: preferences, delivery history, events (the status badge above
    // also says "confirmed": the events are read from their own list).
    let detail_path = extract_path(&list, "/admin/subscribers/").unwrap();
    let detail = admin.get_page(&detail_path).await;
    let mut by_row = snapshot_settings();
    // A delivery's number depends on the order the two subscribers' were created in.
    by_row.add_filter(r"<tr>\s*<td>\d+</td>", "<tr>\n      <td>[id]</td>");
    by_row.bind(|| insta::assert_snapshot!("admin_subscriber", detail));
    let events: Vec<&str> = section(&detail, "<h2>Events</h2>")
        .split("<li>")
        .skip(1)
        .map(|e| e.split("</li>").next().unwrap().rsplit(": ").next().unwrap())
        .collect();
    assert_eq!(events, ["confirmed", "subscribed"], "the events, newest first");
    assert!(
        section(&detail, "<h2>Deliveries</h2>").contains("<td>2025-11-06</td>"),
        "the delivery history"
    );
    let preview = admin.get_page(&format!("{detail_path}/preview")).await;
    assert!(preview.contains("Next digest of"));

    let papers = admin.get_page("/admin/papers?q=tabular").await;
    let tabtune = papers.split("<tr").find(|row| row.contains("TabTune")).expect("TabTune listed");
    let tabtune = tabtune.split("</tr>").next().unwrap().trim_end();
    assert!(tabtune.ends_with("<td>1</td>"), "the last column, digests that carried it: {tabtune}");
    let runs = admin.get_page("/admin/runs").await;
    assert!(runs.contains("<td>arxiv</td>") && runs.contains("<td>2025-W45</td>"), "{runs}");
    let sent = admin.get_page("/admin/deliveries?status=sent").await;
    assert!(sent.contains("alice@example.com"));
    assert_eq!(admin.get("/admin/deliveries?status=bogus").await.status(), 400);
}

#[tokio::test]
async fn hostile_subscriber_data_is_escaped_on_admin_pages() {
    let app = spawn_app_with(&ADMIN_ENV).await;
    let prefs = app.subscriber("eve@example.com", &[]).await;
    app.post_form(&prefs, &[("topics", "<script>alert(1)</script>")]).await;
    let admin = app.admin_login().await;
    let list = admin.get_page("/admin/subscribers").await;
    assert!(!list.contains("<script>alert(1)</script>"));
    assert!(list.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn the_csv_export_streams_every_subscriber() {
    let app = spawn_app_with(&ADMIN_ENV).await;
    app.subscriber("csv1@example.com", &[("topics", "=HYPERLINK(\"http://evil\"), agents")]).await;
    app.subscribe("csv2@example.com", "").await;
    let admin = app.admin_login().await;
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
    let (app, _up) = app_with_papers(&ADMIN_ENV).await;
    app.subscriber("gdpr@example.com", &[]).await;
    // The digest is refused with a reply that quotes the address.
    app.smtp.set_mode(Mode::RejectUnknownUser);
    app.send_edition("2025-11-06").await;
    let error = app.deliveries().await[0].last_error.clone().unwrap();
    assert!(error.contains("gdpr@example.com"), "{error}");
    let admin = app.admin_login().await;
    let id = app.subscriber_id("gdpr@example.com").await;
    // What they rated, and the taste it trained, go with them.
    assert!(paperboy::store::ratings::set(&app.db, id, "2511.03276", Some(true)).await.unwrap());
    paperboy::store::ratings::save_taste(&app.db, id, Some(&serde_json::json!({}))).await.unwrap();
    assert_eq!(admin.post_raw(&format!("/admin/subscribers/{id}/delete"), &[]).await.status(), 403);
    let res = admin.post(&format!("/admin/subscribers/{id}/delete"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    assert!(paperboy::store::subscribers::find_by_id(&app.db, id).await.unwrap().is_none());
    assert_eq!(admin.get(&format!("/admin/subscribers/{id}")).await.status(), 404);
    assert!(
        paperboy::store::ratings::of_subscriber(&app.db, id, None).await.unwrap().is_empty(),
        "their ratings are gone"
    );
    let taste: serde_json::Value = paperboy::store::ratings::taste(&app.db, id).await.unwrap();
    assert!(taste.is_null(), "their taste is gone: {taste}");
    // Raw SQL: once erased nobody can be named any more, so no interface can show what of
    // theirs is left; the tables must hold none of their mail.
    let mail: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outgoing_mail").fetch_one(&app.db).await.unwrap();
    assert_eq!(mail, 0, "their emails are gone");
    let deliveries = app.deliveries().await;
    assert_eq!(deliveries.len(), 1, "the delivery counts…");
    assert_eq!(deliveries[0].subscriber_id, None, "…without the person");
    let error = deliveries[0].last_error.clone().unwrap();
    assert!(!error.contains("gdpr"), "the address is gone from the SMTP reply: {error}");
    assert!(error.contains("550") && error.contains("<…@example.com>"), "{error}");
    // Raw SQL: the anonymous events belong to nobody, so no interface lists them.
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM subscriber_events WHERE subscriber_id IS NULL ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    // (The "User unknown" refusal made them bounced before they were erased.)
    assert_eq!(kinds, ["subscribed", "confirmed", "bounced", "deleted"]);
    let csv = admin.get_page("/admin/subscribers.csv").await;
    assert!(!csv.contains("gdpr@example.com"));
    assert_eq!(admin.post(&format!("/admin/subscribers/{id}/delete"), &[]).await.status(), 404);
}

#[tokio::test]
async fn a_failed_delivery_can_be_retried_from_the_dashboard() {
    let up = Upstream::start().await;
    let app = spawn_app_with(&ADMIN_ENV).await;
    app.seed_papers(&up).await;
    app.subscriber("retry@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    // The send and the running worker share the work; either way the delivery fails.
    app.send_edition("2025-11-06").await;
    wait_for_status(&app, DeliveryStatus::Failed).await;
    let admin = app.admin_login().await;
    let failed = admin.get_page("/admin/deliveries").await;
    assert!(
        failed.contains("(550): 5.7.1 message refused by policy"),
        "the SMTP reply is shown: {failed}"
    );
    let retry = failed
        .split("action=\"")
        .skip(1)
        .map(|a| a.split('"').next().unwrap())
        .find(|a| a.ends_with("/retry"))
        .expect("a Retry button")
        .to_string();

    app.smtp.set_mode(Mode::Accept);
    let res = admin.post(&retry, &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for_mail_to("retry@example.com", 2).await;
    assert_eq!(mail.header("x-paperboy-edition").as_deref(), Some("2025-11-06"));
    wait_for_status(&app, DeliveryStatus::Sent).await;
}

/// Waits for the (only) delivery to reach `wanted`.
async fn wait_for_status(app: &TestApp, wanted: DeliveryStatus) {
    wait_until(&format!("the delivery {wanted}"), Duration::from_secs(20), || async {
        app.deliveries().await.first().is_some_and(|d| d.status == wanted)
    })
    .await;
}

#[tokio::test]
async fn run_actions_start_ingests_and_sends() {
    let up = Upstream::start().await;
    let app = spawn_app_with_upstream(&up, &ADMIN_ENV).await;
    let admin = app.admin_login().await;
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
        app.ingest_runs().await.iter().any(|r| r.trigger == "admin" && r.status == "succeeded")
    })
    .await;
    app.subscriber("action@example.com", &[]).await;
    let res = admin.post("/admin/send", &[("date", "2025-11-06")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mail = app.smtp.wait_for_mail_to("action@example.com", 2).await;
    assert_eq!(mail.header("x-paperboy-edition").as_deref(), Some("2025-11-06"));
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let (app, _up) = app_with_papers(&[]).await;
    app.subscriber("metrics@example.com", &[]).await;
    app.send_edition("2025-11-06").await;
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
    let app =
        spawn_app_with(&with_admin(&[("PAPERBOY_SECRET", "an operator-chosen secret")])).await;
    let res = app.try_admin_login(EMAIL, PASSWORD).await;
    let cookie = set_cookie(&res, "pb_admin").unwrap();
    let token = cookie.split(';').next().unwrap().trim_start_matches("pb_admin=");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"an operator-chosen secret").unwrap();
    mac.update(token.as_bytes());
    let expected = mac.finalize().into_bytes().to_vec();
    let session = paperboy::store::admins::live_session(&app.db, &expected).await.unwrap();
    assert!(session.is_some(), "the session is found by the token's HMAC under the secret");
}

#[tokio::test]
async fn a_send_started_from_the_dashboard_stops_cleanly_with_the_service() {
    let (mut app, _up) = app_with_papers(&ADMIN_ENV).await;
    for i in 0..4 {
        app.subscriber(&format!("stop{i}@example.com"), &[]).await;
    }
    let before = app.smtp.messages().len();
    app.smtp.set_mode(Mode::Delay(700));
    let admin = app.admin_login().await;
    let res = admin.post("/admin/send", &[("date", "2025-11-06")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // A digest is on the wire when the service is told to stop.
    wait_until("the send started", Duration::from_secs(20), || async { app.smtp.begun() > 0 })
        .await;
    drop(admin);
    app.stop().await;
    // The stop waited for the digest in flight, and handed the rest back untouched.
    let delivered = app.smtp.messages().len() - before;
    assert!(delivered >= 1, "the digest in flight was finished");
    let deliveries = app.deliveries().await;
    let count = |status| deliveries.iter().filter(|d| d.status == status).count();
    assert_eq!(
        count(DeliveryStatus::Sent),
        delivered,
        "every digest that went out is recorded as sent"
    );
    assert_eq!(count(DeliveryStatus::Pending), 4 - delivered, "the others wait for the next run");
    // Nothing is left claimed by the stopped process: the next run delivers the rest at once.
    app.smtp.set_mode(Mode::Accept);
    let next = app.send_edition("2025-11-06").await;
    assert_eq!(next.sent as usize, 4 - delivered, "{next}");
    for i in 0..4 {
        assert_eq!(
            app.digests_to(&format!("stop{i}@example.com")).len(),
            1,
            "stop{i} got one digest"
        );
    }
}
