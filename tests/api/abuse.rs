//! The front door under attack and the data it keeps: cheap denial of service, strangers
//! posting forms for other people's addresses, what stays in the database, counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::Digest;

use crate::helpers::{
    ADMIN_EMAIL, TestApp, extract_path, login_form, spawn_app, spawn_app_with, wait_until,
    with_admin,
};

/// `count` three-letter topics, comma-separated (15,500 of them make 62 KB).
fn topic_flood(count: usize) -> String {
    (0..count).map(|i| format!("{:03}", i % 1000)).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn a_flood_of_topics_is_refused_at_once_and_other_pages_stay_responsive() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "0")]).await;
    let flood = topic_flood(15_500);
    assert!(flood.len() > 60_000 && flood.len() < 64 * 1024);
    // Four in flight at once, and a health check beside them (a browser leaves the commas
    // of a form body unescaped).
    let form = format!("email=flood%40example.com&topics={flood}");
    let floods: Vec<_> = (0..4).map(|_| app.post_raw_form("/subscribe", form.as_str())).collect();
    let (answers, health) =
        tokio::join!(futures_util::future::join_all(floods), app.get("/healthz"));
    assert_eq!(health.status(), 200);
    for res in answers {
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("at most 20 topics"));
    }
    assert_eq!(app.status_of("flood@example.com").await, None);

    // The preferences form refuses it the same way.
    let prefs = app.subscribe_and_confirm("subscriber@example.com", "").await;
    let res = app.post_raw_form(&prefs, format!("topics={flood}")).await;
    assert_eq!(res.status(), 422);
    let res = app.post_raw_form(&prefs, format!("authors={flood}")).await;
    assert_eq!(res.status(), 422);
    assert_eq!(app.export_of(&prefs).await["preferences"]["topics"], serde_json::json!([]));
}

#[tokio::test]
async fn saving_preferences_is_rate_limited_per_client() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("busy@example.com", "").await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(app.post_form(&prefs, &[("topics", "agents")]).await.status().as_u16());
    }
    assert!(statuses[..30].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}

#[tokio::test]
async fn ipv6_clients_are_limited_by_their_64_and_only_the_last_forwarded_entry_counts() {
    let app =
        spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "1"), ("PAPERBOY_TRUST_PROXY", "on")]).await;
    let post = |forwarded: &'static str, email: &'static str| {
        app.client
            .post(format!("{}/subscribe", app.address))
            .header("x-forwarded-for", forwarded)
            .form(&[("email", email)])
            .send()
    };
    assert_eq!(post("2001:db8:1:2::1", "a@example.com").await.unwrap().status(), 200);
    // Another address in the same /64 is the same client.
    assert_eq!(post("2001:db8:1:2:ffff::9", "b@example.com").await.unwrap().status(), 429);
    // Another /64 is another client.
    assert_eq!(post("2001:db8:1:3::1", "c@example.com").await.unwrap().status(), 200);
    // Entries before the last are the client's own claims; the proxy's may carry a port.
    assert_eq!(
        post("198.51.100.7, 203.0.113.5:4711", "d@example.com").await.unwrap().status(),
        200
    );
    assert_eq!(post("198.51.100.8, 203.0.113.5:80", "e@example.com").await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_stranger_cannot_change_the_choices_of_a_pending_or_unsubscribed_address() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "0")]).await;
    let topics_of = |email| app.choices_of(email);
    // A pending subscriber: someone else posts the form with other choices.
    app.subscribe("pen@example.com", "diffusion").await;
    app.smtp.wait_for_mail_to("pen@example.com", 1).await;
    app.post_form(
        "/subscribe",
        &[("email", "pen@example.com"), ("topics", "spam, more spam"), ("frequency", "weekly")],
    )
    .await;
    let second = app.smtp.wait_for_mail_to("pen@example.com", 2).await;
    assert_eq!(topics_of("pen@example.com").await, (vec!["diffusion".into()], "daily".into()));
    // The email says what confirming would set up; only the link applies it.
    assert!(second.text().contains("weekly digest. Topics: spam, more spam"), "{}", second.text());
    app.confirm(&second.link("/confirm/").unwrap()).await;
    assert_eq!(
        topics_of("pen@example.com").await,
        (vec!["spam".into(), "more spam".into()], "weekly".into())
    );

    // An unsubscribed subscriber keeps their choices until they confirm again.
    let prefs = app.subscribe_and_confirm("uns@example.com", "world models").await;
    app.unsubscribe(&prefs).await;
    app.post_form("/subscribe", &[("email", "uns@example.com"), ("topics", "spam")]).await;
    assert_eq!(topics_of("uns@example.com").await.0, ["world models"]);
    // A confirmed subscriber's choices are never touched by the form.
    let _ = app.subscribe_and_confirm("conf@example.com", "agents").await;
    app.post_form("/subscribe", &[("email", "conf@example.com"), ("topics", "spam")]).await;
    app.smtp.wait_for_mail_to("conf@example.com", 2).await;
    assert_eq!(topics_of("conf@example.com").await.0, ["agents"]);
}

#[tokio::test]
async fn a_strangers_sign_up_leaves_my_pending_link_working_with_my_choices() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "0")]).await;
    let choices = || app.choices_of("me@example.com");
    let form = |topics: &'static str, frequency: &'static str| {
        [("email", "me@example.com"), ("topics", topics), ("frequency", frequency)]
    };
    app.post_form("/subscribe", &form("diffusion", "daily")).await;
    let mine = app.confirmation_link("me@example.com", 1).await;
    // Someone else posts the form with my address and other choices, twice.
    app.post_form("/subscribe", &form("spam", "weekly")).await;
    app.post_form("/subscribe", &form("more spam", "weekly")).await;
    let theirs = app.confirmation_link("me@example.com", 3).await;
    assert_ne!(mine, theirs);

    // Both links answer until one is used; mine applies what I chose.
    assert_eq!(app.get_link(&mine).await.status(), 200);
    assert_eq!(app.get_link(&theirs).await.status(), 200);
    app.confirm(&mine).await;
    assert_eq!(app.status_of("me@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(choices().await, (vec!["diffusion".into()], "daily".into()));
    // The others are void once I confirmed: they neither answer nor change my choices.
    assert_eq!(app.post_link(&theirs).await.status(), 404);
    assert_eq!(choices().await.0, ["diffusion"]);
    // Mine now says it was used.
    let again = app.get_link(&mine).await;
    assert!(again.text().await.unwrap().contains("Already confirmed"));

    // An earlier link that expired offers a fresh one, which keeps that link's choices.
    app.post_form("/subscribe", &[("email", "you@example.com"), ("topics", "graphs")]).await;
    let yours = app.confirmation_link("you@example.com", 1).await;
    app.post_form("/subscribe", &[("email", "you@example.com"), ("topics", "spam")]).await;
    app.smtp.wait_for_mail_to("you@example.com", 2).await;
    // Raw SQL: 48 hours pass; no interface moves the clock.
    sqlx::query("UPDATE pending_links SET expires_at = now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .unwrap();
    let expired = app.get_link(&yours).await;
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("This link has expired"));
    let renew = format!("{yours}/renew");
    assert_eq!(app.post_link(&renew).await.status(), 200);
    let fresh = app.confirmation_link("you@example.com", 3).await;
    app.confirm(&fresh).await;
    assert_eq!(app.status_of("you@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(app.choices_of("you@example.com").await.0, ["graphs"]);
}

#[tokio::test]
async fn no_working_link_is_kept_in_the_database() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("keep@example.com", "agents").await;
    let token = prefs.trim_start_matches("/preferences/");
    let confirm_link = app.confirmation_link("keep@example.com", 1).await;
    let confirm_token = confirm_link.rsplit('/').next().unwrap().to_string();

    // Sent mail keeps its kind and subject, not its link-bearing body. Raw SQL here: what
    // the tables hold at rest is the point, and no interface shows it.
    let rows: Vec<(String, String, String, String, String)> =
        sqlx::query_as("SELECT kind, status, subject, body_text, body_html FROM outgoing_mail")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (kind, status, subject, text, html) = &rows[0];
    assert_eq!((kind.as_str(), status.as_str()), ("confirmation", "sent"));
    assert!(subject.contains("Confirm"));
    assert!(text.is_empty() && html.is_empty(), "the body with its link is blanked once sent");
    let notice: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT notice FROM outgoing_mail").fetch_one(&app.db).await.unwrap();
    assert_eq!(notice, None, "the notice with its token is dropped once sent");

    // Neither the manage token nor the confirmation token appears anywhere in the tables.
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, ' ') FROM (
             SELECT row_to_json(s)::text AS t FROM subscribers s
             UNION ALL SELECT row_to_json(m)::text FROM outgoing_mail m
             UNION ALL SELECT row_to_json(e)::text FROM subscriber_events e) AS all_rows",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!dump.contains(token), "the manage token is derived, not stored");
    assert!(!dump.contains(&confirm_token), "only a hash of the confirmation token is kept");

    // The derived token works, and is bound to this subscriber and purpose.
    assert_eq!(app.get(&prefs).await.status(), 200);
    assert_eq!(app.get(&format!("/confirm/{token}")).await.status(), 404);
}

#[tokio::test]
async fn manage_links_in_emails_sent_before_links_were_derived_keep_working() {
    let app = spawn_app().await;
    let old_token = "legacyLegacyLegacyLegacyLegacyLegacy1234567";
    assert_eq!(old_token.len(), 43);
    let hash = sha2::Sha256::digest(old_token.as_bytes()).to_vec();
    // Raw SQL: a subscriber as an older version stored them; no interface writes one now.
    sqlx::query(
        "INSERT INTO subscribers (email, email_key, status, legacy_manage_hash, confirmed_at)
         VALUES ('old@example.com', 'old@example.com', 'confirmed', $1, now())",
    )
    .bind(hash)
    .execute(&app.db)
    .await
    .unwrap();
    let page = app.get(&format!("/preferences/{old_token}")).await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("old@example.com"));
    // The page's own forms already use the new, derived link.
    let new_path = extract_path(&body, "/unsubscribe/").unwrap();
    assert!(!new_path.contains(old_token));
    let res = app.post_form(&format!("/unsubscribe/{old_token}"), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.status_of("old@example.com").await.as_deref(), Some("unsubscribed"));
}

/// Subscribers by status as `/metrics` reports them (from the count rows), and as every
/// subscriber, read one by one (the operator's CSV export), says.
async fn counts(app: &TestApp) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    use futures_util::TryStreamExt;
    let metrics = app.get_page("/metrics").await;
    let mut reported: Vec<(String, i64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("paperboy_subscribers{status=\""))
        .filter_map(|l| {
            let (status, n) = l.split_once("\"} ")?;
            Some((status.to_string(), n.trim().parse::<f64>().ok()? as i64))
        })
        .filter(|(_, n)| *n != 0)
        .collect();
    reported.sort();
    let mut actual = std::collections::BTreeMap::<String, i64>::new();
    let mut everyone = paperboy::store::subscribers::export(&app.db);
    while let Some(row) = everyone.try_next().await.unwrap() {
        *actual.entry(row.status).or_default() += 1;
    }
    (reported, actual.into_iter().collect())
}

#[tokio::test]
async fn counts_stay_right_under_concurrent_sign_ups_changes_and_bulk_imports() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "0")]).await;
    let app = &app;
    let signups: Vec<_> = (0..40)
        .map(|i| async move { app.subscribe(&format!("c{i}@example.com"), "").await })
        .collect();
    for res in futures_util::future::join_all(signups).await {
        assert_eq!(res.status(), 200);
    }
    let a = app.subscribe_and_confirm("one@example.com", "").await;
    app.subscribe_and_confirm("two@example.com", "").await;
    app.unsubscribe(&a).await;
    let (reported, actual) = counts(app).await;
    assert_eq!(reported, actual);
    assert_eq!(
        actual,
        [("confirmed".into(), 1), ("pending".into(), 40), ("unsubscribed".into(), 1)]
    );

    // A bulk import of 20,000 subscribers in one statement, then a bulk change (this was
    // quadratic with one shared counter row per status), and a fold of the count rows.
    // Raw SQL: an operator's bulk import is their own SQL; paperboy has no interface for it.
    sqlx::query(
        "INSERT INTO subscribers (email, email_key, status)
         SELECT 'bulk' || i || '@example.com', 'bulk' || i || '@example.com', 'confirmed'
         FROM generate_series(1, 20000) AS i",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("UPDATE subscribers SET status = 'unsubscribed' WHERE email_key LIKE 'bulk1%'")
        .execute(&app.db)
        .await
        .unwrap();
    paperboy::store::subscribers::fold_counts(&app.db).await.unwrap();
    // Raw SQL: how many count rows are kept is the point, and no interface shows it.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriber_counts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(rows <= 3, "one row per status after a fold, not {rows}");
    let (reported, actual) = counts(app).await;
    assert_eq!(reported, actual);
}

#[tokio::test]
async fn a_flood_of_sign_in_attempts_does_not_stall_other_pages() {
    let app = spawn_app_with(&with_admin(&[("PAPERBOY_TRUST_PROXY", "on")])).await;
    let (cookie, csrf) = login_form(&app.client, &app.address).await;
    let csrf = csrf.as_str();
    // Password checks from many clients at once (each under its own rate limit).
    let answered = Arc::new(AtomicUsize::new(0));
    let attempts: Vec<_> = (0..24)
        .map(|i| {
            let sent = app
                .client
                .post(format!("{}/admin/login", app.address))
                .header("cookie", &cookie)
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .form(&[("email", ADMIN_EMAIL), ("password", "wrong password"), ("csrf", csrf)])
                .send();
            let answered = answered.clone();
            async move {
                let res = sent.await;
                answered.fetch_add(1, Ordering::SeqCst);
                res
            }
        })
        .collect();
    let flood = tokio::spawn(futures_util::future::join_all(attempts));
    // A first answer: the flood has arrived and its password checks are running (two at
    // a time), the rest queued behind them.
    wait_until("a first sign-in answered", Duration::from_secs(20), || async {
        answered.load(Ordering::SeqCst) > 0
    })
    .await;
    // Other pages answer while the password checks queue up on the blocking pool.
    for _ in 0..5 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    assert!(!flood.is_finished(), "the health checks did not wait for the sign-ins");
    for res in flood.await.unwrap() {
        assert_eq!(res.unwrap().status(), 401);
    }
}
