//! Mail never blocks a request and is never lost: queueing, retries, permanent failures.

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, wait_until};
use crate::smtp::{Mode, SmtpServer};

/// The first queued message: (status, attempts, last error). Raw SQL: the queue's
/// bookkeeping (attempts, the last error) shows through no interface; the data export
/// lists a message's status only.
async fn mail_row(app: &TestApp) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM outgoing_mail ORDER BY id LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The message's row reaches a state.
async fn wait_for_row<F: Fn(&(String, i32, Option<String>)) -> bool>(
    app: &TestApp,
    what: &str,
    check: F,
) {
    wait_until(what, Duration::from_secs(10), || async { check(&mail_row(app).await) }).await;
}

#[tokio::test]
async fn the_form_answers_at_once_while_smtp_is_down_and_the_mail_goes_out_once_it_is_back() {
    // A port with nothing listening: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[("PAPERBOY_SMTP_URL", &url)]).await;

    let started = Instant::now();
    let res = app.subscribe("jo@example.com", "").await;
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "the form must not wait for SMTP");

    // The worker tried, failed, and scheduled a retry with the reason recorded. (An attempt
    // counts when it is claimed, before its outcome: wait for the outcome.)
    wait_for_row(&app, "one failed attempt", |r| r.1 >= 1 && r.2.is_some()).await;
    let (status, _, error) = mail_row(&app).await;
    assert_eq!(status, "pending");
    assert!(error.is_some(), "the failure reason is recorded");

    let smtp = SmtpServer::start_on(port).await;
    let mail = smtp.wait_for_mail_to("jo@example.com", 1).await;
    assert!(mail.link("/confirm/").is_some());
    wait_for_row(&app, "sent", |r| r.0 == "sent").await;
    let (_, attempts, _) = mail_row(&app).await;
    assert!(attempts >= 2);
    // A report quoting the Message-ID finds the message: the one sent is the one recorded.
    let found = paperboy::store::bounces::target_by_message_id(&app.db, &mail.message_id())
        .await
        .unwrap()
        .expect("the confirmation found by its Message-ID");
    assert_eq!(found.email, "jo@example.com");
    assert!(found.mail.is_some());
    // A later message going out shows the worker has moved on: no second copy came.
    app.subscribe("later@example.com", "").await;
    smtp.wait_for_mail_to("later@example.com", 1).await;
    assert_eq!(smtp.messages_to("jo@example.com").len(), 1, "sent exactly once");
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_until_accepted() {
    let app = spawn_app_with(&[]).await;
    app.smtp.set_mode(Mode::RejectTransient);
    app.subscribe("kim@example.com", "").await;
    wait_for_row(&app, "two attempts", |r| r.1 >= 2).await;
    let (status, _, error) = mail_row(&app).await;
    assert_eq!(status, "pending");
    assert!(error.unwrap().contains("451"));
    app.smtp.set_mode(Mode::Accept);
    app.smtp.wait_for_mail_to("kim@example.com", 1).await;
    wait_for_row(&app, "sent", |r| r.0 == "sent").await;
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_with_the_reply_and_not_retried() {
    let app = spawn_app_with(&[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    app.subscribe("lee@example.com", "").await;
    wait_for_row(&app, "failed", |r| r.0 == "failed").await;
    let (_, attempts, error) = mail_row(&app).await;
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("550"), "the server's reply is kept");
    app.smtp.set_mode(Mode::Accept);
    // Once a later message has gone out, the refused one has had its chance to be retried.
    app.subscribe("next@example.com", "").await;
    app.smtp.wait_for_mail_to("next@example.com", 1).await;
    assert_eq!(app.smtp.messages().len(), 1, "only the later message went out");
    assert_eq!(mail_row(&app).await.1, 1);
}

#[tokio::test]
async fn transient_failures_give_up_after_the_attempt_limit() {
    let app =
        spawn_app_with(&[("PAPERBOY_MAX_ATTEMPTS", "3"), ("PAPERBOY_RETRY_BASE_MS", "50")]).await;
    app.smtp.set_mode(Mode::RejectTransient);
    app.subscribe("max@example.com", "").await;
    wait_for_row(&app, "failed", |r| r.0 == "failed").await;
    assert_eq!(mail_row(&app).await.1, 3);
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_send_in_flight() {
    let mut app = spawn_app_with(&[]).await;
    app.smtp.set_mode(Mode::Slow);
    app.subscribe("nia@example.com", "").await;
    wait_until("a send begun", Duration::from_secs(10), || async { app.smtp.begun() >= 1 }).await;
    app.stop().await;
    assert_eq!(app.smtp.messages().len(), 1, "the message in flight was completed");
    let id = app.subscriber_id("nia@example.com").await;
    let mail = paperboy::store::mail_queue::of_subscriber(&app.db, id).await.unwrap();
    assert_eq!(mail[0].2, "sent", "and recorded as sent before exit");
}

#[tokio::test]
async fn a_queued_notice_this_version_cannot_read_fails_alone() {
    let app = spawn_app().await;
    // Left in the queue by a later version (or a rollback), before a sign-up's confirmation.
    // Raw SQL: only another version of paperboy writes a notice this one cannot read.
    sqlx::query(
        "INSERT INTO outgoing_mail (kind, recipient, subject, notice)
         VALUES ('confirmation', 'future@example.com', 'Confirm', '{\"kind\": \"from_later\"}')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.subscribe("now@example.com", "agents").await;

    // The readable one goes out; the other is given up, its notice dropped, nothing sent.
    app.smtp.wait_for_mail_to("now@example.com", 1).await;
    wait_until("the unreadable message given up", Duration::from_secs(10), || async {
        mail_row(&app).await.0 == "failed"
    })
    .await;
    let (_, _, error) = mail_row(&app).await;
    assert!(error.unwrap_or_default().contains("unreadable notice"));
    // Raw SQL: what the queue keeps at rest is the point, and no interface shows it.
    let kept: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT notice FROM outgoing_mail WHERE recipient = 'future@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, None);
    assert!(app.smtp.messages_to("future@example.com").is_empty());
}

/// Each message's (status, attempts, whether claimed), in the order they were queued.
async fn queue_rows(db: &sqlx::PgPool) -> Vec<(String, i32, bool)> {
    sqlx::query_as("SELECT status, attempts, claimed_by IS NOT NULL FROM outgoing_mail ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_confirmation_whose_sender_is_killed_mid_send_goes_again_and_both_attempts_count() {
    let app = spawn_app_with(&[]).await;
    app.smtp.set_mode(Mode::Delay(1500));
    app.subscribe("kit@example.com", "").await;
    wait_until("a send begun", Duration::from_secs(10), || async { app.smtp.begun() >= 1 }).await;
    // The attempt counted when the message was claimed, before anything was sent.
    let (sender, attempts): (i32, i32) =
        sqlx::query_as("SELECT claimed_by, attempts FROM outgoing_mail")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(attempts, 1);

    // The sender's connection dies mid-send, as it would with its process.
    sqlx::query("SELECT pg_terminate_backend($1)").bind(sender).execute(&app.db).await.unwrap();
    wait_for_row(&app, "sent", |r| r.0 == "sent").await;
    assert_eq!(mail_row(&app).await.1, 2, "the killed attempt counts, and the one that sent it");
    let copies =
        app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t == "kit@example.com")).count();
    assert!((1..=2).contains(&copies), "at most the message in flight went twice: {copies}");
}

#[tokio::test]
async fn a_graceful_stop_gives_back_the_attempts_of_the_messages_it_did_not_send() {
    let mut app = spawn_app_with(&[]).await;
    app.smtp.set_mode(Mode::Slow);
    // Three messages queued at once (as rendered by an earlier version), claimed as one batch.
    sqlx::query(
        "INSERT INTO outgoing_mail (kind, recipient, subject, body_text, body_html)
         SELECT 'confirmation', 'r' || i || '@example.com', 'Confirm', 'Confirm.', '<p>Confirm.</p>'
         FROM generate_series(1, 3) i",
    )
    .execute(&app.db)
    .await
    .unwrap();
    wait_until("a send begun", Duration::from_secs(10), || async { app.smtp.begun() >= 1 }).await;
    let claimed = vec![("pending".to_string(), 1, true); 3];
    assert_eq!(queue_rows(&app.db).await, claimed, "each claim counted an attempt");

    let db = app.db.clone();
    app.stop().await;
    let after = queue_rows(&db).await;
    assert_eq!(after[0], ("sent".to_string(), 1, false), "the message in flight went");
    let released = vec![("pending".to_string(), 0, false); 2];
    assert_eq!(after[1..], released, "the others are free again, their attempts given back");
}
