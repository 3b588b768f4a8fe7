//! Tokens, preferences, unsubscribe and coming back.

use crate::helpers::{extract_path, spawn_app};
use crate::smtp::url_path;

#[tokio::test]
async fn tokens_are_bound_to_their_purpose_and_tampering_gives_404() {
    let app = spawn_app().await;
    app.subscribe("dan@example.com", "").await;
    let confirm_link = app.confirmation_link("dan@example.com", 1).await;
    let confirm_token = confirm_link.rsplit('/').next().unwrap().to_string();
    let manage_token =
        app.confirm(&confirm_link).await.trim_start_matches("/preferences/").to_string();

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
    let old = app.confirmation_link("eve@example.com", 1).await;
    // Raw SQL: 48 hours pass; no interface moves the clock.
    sqlx::query("UPDATE subscribers SET confirm_expires_at = now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .unwrap();

    let page = app.get_link(&old).await;
    assert_eq!(page.status(), 410);
    let body = page.text().await.unwrap();
    assert!(body.contains("This link has expired"), "{body}");
    let renew = extract_path(&body, "/confirm/").unwrap();
    assert_eq!(renew, format!("{}/renew", url_path(&old)));
    assert_eq!(app.post_link(&old).await.status(), 410);
    assert_eq!(app.status_of("eve@example.com").await.as_deref(), Some("pending"));

    assert_eq!(app.post_form(&renew, &[]).await.status(), 200);
    let fresh = app.confirmation_link("eve@example.com", 2).await;
    assert_ne!(fresh, old);
    app.confirm(&fresh).await;
    assert_eq!(app.status_of("eve@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(app.get_link(&old).await.status(), 404);
}

#[tokio::test]
async fn preferences_are_shown_saved_and_validated() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("fay@example.com", "diffusion").await;
    let res = app.get(&prefs).await;
    assert_eq!(res.headers()["cache-control"], "no-store", "personal pages are never cached");
    let page = res.text().await.unwrap();
    assert!(page.contains("For <strong>fay@example.com</strong>"), "whose page it is");
    // (The field's placeholder says "diffusion" too: the field's content is what counts.)
    assert!(page.contains(">diffusion</textarea>"), "the topic as saved: {page}");

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
    assert!(
        saved.text().await.unwrap().contains("Saved. Your next digest uses these preferences.")
    );
    let stored = app.export_of(&prefs).await["preferences"].clone();
    assert_eq!(
        stored,
        serde_json::json!({
            "topics": ["spiking neural networks", "mixture of experts"],
            "categories": ["cs.NE", "cs.LG"],
            "authors": ["Geoffrey Hinton", "Yann LeCun"],
            "frequency": "weekly",
            "weekday": 5,
            "delivery_hour": 18,
            "time_zone": "Europe/Berlin",
            "papers_per_email": 5,
            "min_upvotes": 3,
            "trend_weight": stored["trend_weight"],
        })
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
    assert!(body.contains(">brand new topic</textarea>"), "what was typed is kept");
    assert!(body.contains("value=\"Mars/Olympus_Mons\""));
    assert!(body.contains("Please enter a time zone such as Europe/Berlin or UTC."));
    assert!(body.contains("Please choose between 1 and 50 papers per email."));
    assert!(body.contains("Please choose daily, weekly or feed only."));
    assert!(body.contains("Please choose categories from the list."));
    assert_eq!(
        app.export_of(&prefs).await["preferences"]["topics"],
        serde_json::json!(["spiking neural networks", "mixture of experts"]),
        "nothing saved"
    );
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

    let page = app.get_page(&unsub).await;
    assert!(
        page.contains(&format!("<form method=\"post\" action=\"{unsub}\"")),
        "an Unsubscribe button: {page}"
    );
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("confirmed"));

    // RFC 8058: what a mail client's one-click button sends.
    let res = app.post_raw_form(&unsub, "List-Unsubscribe=One-Click").await;
    assert_eq!(res.status(), 200, "200, never a redirect");
    let body = res.text().await.unwrap();
    assert!(body.contains("You're unsubscribed"), "{body}");
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("unsubscribed"));
    // Posting again is harmless.
    assert_eq!(app.post_form(&unsub, &[]).await.status(), 200);

    let resub = extract_path(&body, "/resubscribe/").unwrap();
    assert_eq!(app.post_form(&resub, &[]).await.status(), 200);
    assert_eq!(app.status_of("hal@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(
        app.events_of("hal@example.com").await,
        ["subscribed", "confirmed", "unsubscribed", "resubscribed"],
        "posting again recorded nothing"
    );
}

#[tokio::test]
async fn an_unsubscribed_subscriber_can_sign_up_again_through_the_form() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("ida@example.com", "").await;
    app.unsubscribe(&prefs).await;
    assert_eq!(app.status_of("ida@example.com").await.as_deref(), Some("unsubscribed"));

    let again = app.subscribe_and_confirm("ida@example.com", "world models").await;
    assert_eq!(again, prefs, "the same subscriber, the same manage link");
    assert_eq!(app.status_of("ida@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(
        app.export_of(&prefs).await["preferences"]["topics"],
        serde_json::json!(["world models"])
    );
}
