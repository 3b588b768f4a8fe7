//! Tokens, preferences, unsubscribe and coming back.

use crate::helpers::{extract_path, spawn_app};

#[tokio::test]
async fn tokens_are_bound_to_their_purpose_and_tampering_gives_404() {
    let app = spawn_app().await;
    app.subscribe("dan@example.com", "").await;
    let confirm_link =
        app.smtp.wait_for_mail_to("dan@example.com", 1).await.link("/confirm/").unwrap();
    let confirm_token = confirm_link.rsplit('/').next().unwrap().to_string();
    let body =
        app.client.post(app.local(&confirm_link)).send().await.unwrap().text().await.unwrap();
    let manage_token = extract_path(&body, "/preferences/")
        .unwrap()
        .trim_start_matches("/preferences/")
        .to_string();

    // The manage token does not confirm, and the confirmation token does not manage.
    assert_eq!(app.get(&format!("/confirm/{manage_token}")).await.status(), 404);
    assert_eq!(app.post_form(&format!("/confirm/{manage_token}"), &[]).await.status(), 404);
    assert_eq!(app.get(&format!("/preferences/{confirm_token}")).await.status(), 404);
    assert_eq!(app.get(&format!("/unsubscribe/{confirm_token}")).await.status(), 404);
    assert_eq!(app.post_form(&format!("/unsubscribe/{confirm_token}"), &[]).await.status(), 404);

    let mut tampered = manage_token.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/preferences/{tampered}"),
        format!("/unsubscribe/{tampered}"),
        "/preferences/1".to_string(),
        "/confirm/' OR 1=1 --".to_string(),
        format!("/confirm/{}", "x".repeat(5000)),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    assert_eq!(app.post_form(&format!("/unsubscribe/{tampered}"), &[]).await.status(), 404);
    assert_eq!(app.status_of("dan@example.com").await.as_deref(), Some("confirmed"));
}

#[tokio::test]
async fn an_expired_confirmation_link_says_so_and_sends_a_new_one() {
    let app = spawn_app().await;
    app.subscribe("eve@example.com", "").await;
    let old = app.smtp.wait_for_mail_to("eve@example.com", 1).await.link("/confirm/").unwrap();
    sqlx::query("UPDATE subscribers SET confirm_expires_at = now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .unwrap();

    let page = app.client.get(app.local(&old)).send().await.unwrap();
    assert_eq!(page.status(), 410);
    let body = page.text().await.unwrap();
    assert!(body.contains("expired"));
    let renew = extract_path(&body, "/confirm/").unwrap();
    assert!(renew.ends_with("/renew"));
    assert_eq!(app.client.post(app.local(&old)).send().await.unwrap().status(), 410);
    assert_eq!(app.status_of("eve@example.com").await.as_deref(), Some("pending"));

    assert_eq!(app.post_form(&renew, &[]).await.status(), 200);
    let fresh = app.smtp.wait_for_mail_to("eve@example.com", 2).await.link("/confirm/").unwrap();
    assert_ne!(fresh, old);
    assert_eq!(app.client.post(app.local(&fresh)).send().await.unwrap().status(), 200);
    assert_eq!(app.status_of("eve@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(app.client.get(app.local(&old)).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn preferences_are_shown_saved_and_validated() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("fay@example.com", "diffusion").await;
    let res = app.get(&prefs).await;
    assert_eq!(res.headers()["cache-control"], "no-store", "personal pages are never cached");
    let page = res.text().await.unwrap();
    assert!(page.contains("fay@example.com"));
    assert!(page.contains("diffusion"));

    let saved = app
        .post_form(
            &prefs,
            &[
                ("topics", "spiking neural networks\nmixture of experts"),
                ("categories", "cs.NE"),
                ("categories", "cs.LG"),
                ("authors", "Geoffrey Hinton, Yann LeCun"),
                ("frequency", "weekly"),
                ("weekday", "5"),
                ("delivery_hour", "18"),
                ("time_zone", "Europe/Berlin"),
                ("papers_per_email", "5"),
                ("min_upvotes", "3"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 200);
    assert!(saved.text().await.unwrap().contains("Saved"));
    #[allow(clippy::type_complexity)]
    let row: (Vec<String>, Vec<String>, Vec<String>, String, i16, i16, String, i32, i32) = sqlx::query_as(
        "SELECT topics, categories, authors, frequency, weekday, delivery_hour, time_zone, papers_per_email, min_upvotes
         FROM subscribers",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(row.0, ["spiking neural networks", "mixture of experts"]);
    assert_eq!(row.1, ["cs.NE", "cs.LG"]);
    assert_eq!(row.2, ["Geoffrey Hinton", "Yann LeCun"]);
    assert_eq!(
        (row.3.as_str(), row.4, row.5, row.6.as_str(), row.7, row.8),
        ("weekly", 5, 18, "Europe/Berlin", 5, 3)
    );

    // Bad values: 422, messages next to the fields, what was typed is kept, nothing saved.
    let bad = app
        .post_form(
            &prefs,
            &[
                ("topics", "brand new topic"),
                ("time_zone", "Mars/Olympus_Mons"),
                ("papers_per_email", "500"),
                ("frequency", "hourly"),
                ("categories", "cs.FAKE"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let body = bad.text().await.unwrap();
    assert!(body.contains("brand new topic"));
    assert!(body.contains("Mars/Olympus_Mons"));
    assert!(body.contains("time zone such as"));
    assert!(body.contains("between 1 and 50"));
    assert!(body.contains("daily, weekly or feed only"));
    assert!(body.contains("categories from the list"));
    let topics: Vec<String> =
        sqlx::query_scalar("SELECT topics FROM subscribers").fetch_one(&app.db).await.unwrap();
    assert_eq!(topics, ["spiking neural networks", "mixture of experts"]);
}

#[tokio::test]
async fn hostile_preferences_are_escaped_on_the_page() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("gus@example.com", "").await;
    let res = app.post_form(&prefs, &[("topics", "<img src=x onerror=alert(1)>, a&b")]).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(!body.contains("<img src=x"));
    assert!(body.contains("&#60;img src=x onerror=alert(1)&#62;"), "{body}");
    assert!(body.contains("a&#38;b"));
}

#[tokio::test]
async fn unsubscribe_needs_a_post_works_with_one_click_and_can_be_undone() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("hal@example.com", "").await;
    let unsub = prefs.replace("/preferences/", "/unsubscribe/");

    let page = app.get(&unsub).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Unsubscribe"));
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("confirmed"));

    // RFC 8058: what a mail client's one-click button sends.
    let res = app
        .client
        .post(format!("{}{}", app.address, unsub))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "200, never a redirect");
    let body = res.text().await.unwrap();
    assert!(body.contains("unsubscribed"));
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("unsubscribed"));
    // Posting again is harmless.
    assert_eq!(app.post_form(&unsub, &[]).await.status(), 200);

    let resub = extract_path(&body, "/resubscribe/").unwrap();
    assert_eq!(app.post_form(&resub, &[]).await.status(), 200);
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("confirmed"));

    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM subscriber_events ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(kinds, ["subscribed", "confirmed", "unsubscribed", "resubscribed"]);
}

#[tokio::test]
async fn an_unsubscribed_subscriber_can_sign_up_again_through_the_form() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("ida@example.com", "").await;
    app.post_form(&prefs.replace("/preferences/", "/unsubscribe/"), &[]).await;
    assert_eq!(app.status_of("ida@example.com").await.as_deref(), Some("unsubscribed"));

    let again = app.subscribe_and_confirm("ida@example.com", "world models").await;
    assert_eq!(again, prefs, "the same subscriber, the same manage link");
    assert_eq!(app.status_of("ida@example.com").await.as_deref(), Some("confirmed"));
    let topics: Vec<String> =
        sqlx::query_scalar("SELECT topics FROM subscribers").fetch_one(&app.db).await.unwrap();
    assert_eq!(topics, ["world models"]);
}
