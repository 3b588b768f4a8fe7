//! Signing up: double opt-in, validation, no enumeration, honeypot, rate limits.

use crate::helpers::{
    BASE_URL, snapshot_settings, spawn_app, spawn_app_with, wait_for_empty_mail_queue,
};
use crate::smtp::url_path;

#[tokio::test]
async fn subscribing_records_a_pending_subscriber_and_mails_a_confirmation_link() {
    let app = spawn_app().await;
    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "ada@example.com"),
                ("topics", "spiking neural networks, diffusion\nRLHF"),
                ("categories", "cs.LG"),
                ("categories", "cs.CL"),
                ("frequency", "weekly"),
                ("website", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Check your inbox"));
    assert_eq!(app.status_of("ada@example.com").await.as_deref(), Some("pending"));

    let mail = app.smtp.wait_for_mail_to("ada@example.com", 1).await;
    assert!(mail.header("content-type").unwrap().contains("multipart/alternative"));
    let link = mail.link("/confirm/").expect("a confirmation link in the text part");
    assert!(link.starts_with(&format!("{BASE_URL}/confirm/")), "link {link} uses the base URL");
    assert!(mail.html().contains(&format!("href=\"{link}\"")), "the HTML part has the same link");
    assert!(mail.header("message-id").unwrap().ends_with("@paperboy.test>"));
    let token = link.rsplit('/').next().unwrap();
    assert!(token.len() >= 22, "token has at least 128 bits");
    // The email says what confirming sets up, as the form was sent (a weekly digest, the
    // three topics), and for how long the link works.
    let _snapshots = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!(
        "confirmation_email_text",
        format!("Subject: {}\n\n{}", mail.subject(), mail.text())
    );
    insta::assert_snapshot!("confirmation_email_html", mail.html());
    // Nothing but the confirmation until the subscriber confirms.
    assert_eq!(app.smtp.messages().len(), 1);

    // Confirming sets up what the form said.
    let prefs = app.confirm(&link).await;
    let preferences = &app.export_of(&prefs).await["preferences"];
    assert_eq!(
        preferences["topics"],
        serde_json::json!(["spiking neural networks", "diffusion", "RLHF"])
    );
    assert_eq!(preferences["categories"], serde_json::json!(["cs.LG", "cs.CL"]));
    assert_eq!(preferences["frequency"], "weekly");
}

#[tokio::test]
async fn a_get_on_the_confirmation_link_changes_nothing_and_the_post_confirms() {
    let app = spawn_app().await;
    app.subscribe("bob@example.com", "").await;
    let link = app.confirmation_link("bob@example.com", 1).await;

    let page = app.get_link(&link).await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(
        body.contains(&format!("<form method=\"post\" action=\"{}\"", url_path(&link))),
        "a Confirm button: {body}"
    );
    assert_eq!(app.status_of("bob@example.com").await.as_deref(), Some("pending"));

    let prefs = app.confirm(&link).await;
    assert_eq!(app.status_of("bob@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(app.get(&prefs).await.status(), 200);

    // The link is used up: a second click says so and no longer hands out the manage link.
    for again in [app.post_link(&link).await, app.get_link(&link).await] {
        assert_eq!(again.status(), 200);
        let body = again.text().await.unwrap();
        assert!(body.contains("Already confirmed"), "{body}");
        assert!(!body.contains("/preferences/"), "no manage link on a used confirmation link");
    }
    // The second click confirmed nothing again.
    assert_eq!(app.events_of("bob@example.com").await, ["subscribed", "confirmed"]);
}

#[tokio::test]
async fn an_invalid_email_gets_422_with_the_form_and_nothing_is_stored() {
    let app = spawn_app().await;
    for bad in ["", "not-an-email", "ann@", "ann@localhost", "<script>@x.com"] {
        let res = app
            .post_form(
                "/subscribe",
                &[("email", bad), ("topics", "diffusion models"), ("frequency", "daily")],
            )
            .await;
        assert_eq!(res.status(), 422, "{bad:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("Please enter a valid email address"), "{bad:?}");
        assert!(body.contains(">diffusion models</textarea>"), "what the subscriber typed is kept");
        assert!(!body.contains("<script>@"), "input is escaped");
    }
    assert!(app.subscribers().await.is_empty(), "nothing is stored");
    assert!(app.smtp.messages().is_empty());
}

#[tokio::test]
async fn bad_topics_frequency_or_category_get_422_with_messages() {
    let app = spawn_app().await;
    let many = (0..21).map(|i| format!("topic {i}")).collect::<Vec<_>>().join(", ");
    let long = "x".repeat(101);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("email", "a@example.com"), ("topics", many.as_str())], "at most 20"),
        (vec![("email", "a@example.com"), ("topics", long.as_str())], "at most 100 characters"),
        (vec![("email", "a@example.com"), ("frequency", "hourly")], "daily, weekly or feed only"),
        (
            vec![("email", "a@example.com"), ("categories", "astro-ph.GA")],
            "categories from the list",
        ),
    ];
    for (form, message) in cases {
        let res = app.post_form("/subscribe", &form).await;
        assert_eq!(res.status(), 422, "{form:?}");
        assert!(res.text().await.unwrap().contains(message), "{form:?} should say {message:?}");
    }
    assert!(app.subscribers().await.is_empty(), "nothing is stored");
    assert!(app.smtp.messages().is_empty());
}

#[tokio::test]
async fn the_answer_is_the_same_for_new_pending_confirmed_and_unsubscribed_addresses() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("known@example.com", "").await;
    app.subscribe("pending@example.com", "").await;
    app.subscribe("gone@example.com", "").await;
    let gone_prefs = app.confirm_latest("gone@example.com").await;
    assert_eq!(app.unsubscribe(&gone_prefs).await.status(), 200);
    assert!(prefs.starts_with("/preferences/"));

    let mut answers = Vec::new();
    for email in ["new@example.com", "pending@example.com", "known@example.com", "gone@example.com"]
    {
        let res = app.subscribe(email, "").await;
        answers.push((res.status(), res.text().await.unwrap()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "every answer must be identical");
}

#[tokio::test]
async fn a_confirmed_subscriber_who_subscribes_again_gets_their_preferences_link() {
    let app = spawn_app().await;
    let prefs = app.subscribe_and_confirm("carol@example.com", "agents").await;
    app.subscribe("Carol@Example.com", "").await;
    let mail = app.smtp.wait_for_mail_to("carol@example.com", 2).await;
    assert!(mail.subject().contains("already subscribed"));
    assert!(mail.link("/confirm/").is_none(), "no second confirmation");
    let link = mail.link("/preferences/").expect("preferences link");
    assert!(link.ends_with(&prefs));
    assert_eq!(app.status_of("carol@example.com").await.as_deref(), Some("confirmed"));
    assert_eq!(
        app.export_of(&prefs).await["preferences"]["topics"],
        serde_json::json!(["agents"]),
        "a repeated sign-up does not overwrite preferences"
    );
}

#[tokio::test]
async fn a_filled_honeypot_looks_like_success_but_stores_and_sends_nothing() {
    let app = spawn_app().await;
    let real = app.subscribe("real@example.com", "").await.text().await.unwrap();
    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "bot@example.com"),
                ("frequency", "daily"),
                ("website", "http://spam.example"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), real);
    assert_eq!(app.status_of("bot@example.com").await, None);
    app.smtp.wait_for(1).await;
    // Whatever the bot's post queued has gone out by now.
    wait_for_empty_mail_queue(&app.db).await;
    assert!(app.smtp.messages_to("bot@example.com").is_empty());
}

#[tokio::test]
async fn too_many_sign_ups_from_one_client_get_429() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "3")]).await;
    for i in 0..3 {
        let res = app.subscribe(&format!("r{i}@example.com"), "").await;
        assert_eq!(res.status(), 200);
    }
    // A forged X-Forwarded-For does not help when the proxy is not trusted.
    let res = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[("email", "r9@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("try again later"));
    assert_eq!(app.status_of("r9@example.com").await, None);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app =
        spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "1"), ("PAPERBOY_TRUST_PROXY", "true")]).await;
    let post = |ip: &'static str, email: &'static str| {
        app.client
            .post(format!("{}/subscribe", app.address))
            .header("x-forwarded-for", ip)
            .form(&[("email", email)])
            .send()
    };
    assert_eq!(post("198.51.100.1", "a@example.com").await.unwrap().status(), 200);
    assert_eq!(post("198.51.100.2", "b@example.com").await.unwrap().status(), 200);
    assert_eq!(post("198.51.100.1", "c@example.com").await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_zero_rate_means_no_limit() {
    let app = spawn_app_with(&[("PAPERBOY_SUBSCRIBE_RATE", "0")]).await;
    for i in 0..25 {
        assert_eq!(app.subscribe(&format!("z{i}@example.com"), "").await.status(), 200);
    }
}

/// Two sign-up batches holding the same addresses in opposite orders (a burst of repeated
/// sign-ups, written by the two batch writers at once) must not deadlock each other: no
/// batch fails, and each address is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_up_batches_over_the_same_addresses_neither_deadlock_nor_repeat() {
    use paperboy::store::subscribers::{NewPending, insert_pending};
    let app = spawn_app().await;
    let row = |key: String| NewPending {
        email: key.clone(),
        email_key: key,
        topics: vec!["diffusion models".into()],
        categories: vec![],
        frequency: "daily",
        examples: vec![],
        confirm_hash: paperboy::domain::Token::generate().hash(),
        confirm_expires_at: chrono::Utc::now() + chrono::Duration::hours(48),
        confirmation: paperboy::mail::Notice::confirmation(
            &paperboy::domain::Token::generate(),
            None,
        )
        .queued(),
    };
    for round in 0..5 {
        let up: Vec<NewPending> =
            (0..100).map(|i| row(format!("r{round}-{i:03}@example.com"))).collect();
        let down: Vec<NewPending> =
            (0..100).rev().map(|i| row(format!("r{round}-{i:03}@example.com"))).collect();
        let (up, down): (Vec<&NewPending>, Vec<&NewPending>) =
            (up.iter().collect(), down.iter().collect());
        let (a, b) = tokio::join!(insert_pending(&app.db, &up), insert_pending(&app.db, &down));
        let (a, b) = (a.expect("the first batch"), b.expect("the second batch"));
        assert_eq!(a.len() + b.len(), 100, "round {round}: each address is new once");
    }
    // As the operator's list and each subscriber's mail (their data export) show them.
    let stored = app.subscribers().await;
    assert_eq!(stored.len(), 500, "every address once");
    for s in stored {
        let mail = paperboy::store::mail_queue::of_subscriber(&app.db, s.id).await.unwrap();
        assert_eq!(mail.len(), 1, "one confirmation for {}", s.email);
    }
}
