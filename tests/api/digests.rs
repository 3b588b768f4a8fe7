//! Personalised digests through the fixture days, the SMTP capture and Postgres.

use std::collections::HashSet;

use paperboy::digests::plan;
use paperboy::domain::Edition;
use paperboy::store::deliveries::DeliveryStatus;

use crate::helpers::{
    BASE_URL, app_with_papers, date, section, snapshot_settings, spawn_app_for_sends,
    spawn_app_with,
};
use crate::smtp::Mode;
use crate::upstream::Upstream;

/// Retries come soon.
const ENV: &[(&str, &str)] = &[("PAPERBOY_RETRY_BASE_MS", "100")];

#[tokio::test]
async fn each_profile_gets_its_own_papers_in_order_with_reasons() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber(
        "topics@example.com",
        &[("topics", "video generation, tabular"), ("papers_per_email", "3")],
    )
    .await;
    app.subscriber("robots@example.com", &[("categories", "cs.RO")]).await;
    app.subscriber("author@example.com", &[("authors", "pratinav seth")]).await;
    app.subscriber("anything@example.com", &[]).await;

    let summary = app.send_edition("2025-11-06").await;
    assert_eq!((summary.composed, summary.sent, summary.skipped, summary.failed), (4, 4, 0, 0));

    let topics = &app.digests_to("topics@example.com")[0];
    assert_eq!(
        topics.paper_ids(),
        ["2511.03334", "2511.02802", "2511.02818"],
        "title matches by upvotes, capped at 3"
    );
    let text = topics.text();
    assert!(text.contains("Why: matches: video generation"), "{text}");
    assert!(text.contains("Why: matches: tabular"));
    assert!(topics.html().contains("Why: matches: video generation"));

    let robots = &app.digests_to("robots@example.com")[0];
    // Every paper of the day's edition in cs.RO.
    let day = Edition::daily(date("2025-11-06"));
    let expected: HashSet<String> = paperboy::store::editions::candidates(&app.db, &day)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.categories.iter().any(|c| c == "cs.RO"))
        .map(|p| p.arxiv_id)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(robots.paper_ids().into_iter().collect::<HashSet<_>>(), expected);
    assert!(robots.text().contains("Why: category cs.RO"));

    let author = &app.digests_to("author@example.com")[0];
    assert_eq!(author.paper_ids(), ["2511.02802", "2511.02818"]);
    assert!(author.text().contains("Why: by pratinav seth"));

    let anything = &app.digests_to("anything@example.com")[0];
    let ids = anything.paper_ids();
    assert_eq!(ids.len(), 10, "the default cap");
    assert_eq!(ids[0], "2511.03276", "the most upvoted first");
    let papers = paperboy::store::editions::papers(&app.db, &ids).await.unwrap();
    let upvotes: Vec<i32> =
        ids.iter().map(|id| papers.iter().find(|p| &p.arxiv_id == id).unwrap().upvotes).collect();
    assert!(upvotes.windows(2).all(|w| w[0] >= w[1]), "{upvotes:?}");
    assert!(anything.text().contains("Why: trending with 132 upvotes"));
}

#[tokio::test]
async fn a_digest_carries_the_contract_headers_and_links() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("hdr@example.com", &[("topics", "diffusion")]).await;
    app.send_edition("2025-11-06").await;
    let mail = &app.digests_to("hdr@example.com")[0];
    let token = prefs.trim_start_matches("/preferences/");

    assert!(mail.header("content-type").unwrap().contains("multipart/alternative"));
    assert_eq!(
        mail.header("list-unsubscribe").unwrap(),
        format!("<{BASE_URL}/unsubscribe/{token}>")
    );
    assert_eq!(mail.header("list-unsubscribe-post").unwrap(), "List-Unsubscribe=One-Click");
    assert!(mail.header("list-id").unwrap().contains("<digest.paperboy.test>"));
    assert_eq!(mail.header("x-paperboy-edition").unwrap(), "2025-11-06");
    assert_eq!(app.deliveries().await[0].status, DeliveryStatus::Sent);
    // A report quoting the Message-ID finds this digest: the one sent is the one recorded.
    let found = paperboy::store::bounces::target_by_message_id(&app.db, &mail.message_id())
        .await
        .unwrap()
        .expect("the digest found by its Message-ID");
    assert_eq!(found.delivery, Some(app.deliveries().await[0].id));

    // Both parts carry the subscriber's own preferences and unsubscribe links.
    for part in [mail.text(), mail.html()] {
        assert!(part.contains(&format!("{BASE_URL}/preferences/{token}")));
        assert!(part.contains(&format!("{BASE_URL}/unsubscribe/{token}")));
    }
    // The subject (the day, the top paper), the papers in order with their why-lines,
    // links to Hugging Face, arXiv and code, the rating links, and the web copy.
    let _snapshots = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!(
        "digest_email_text",
        format!("Subject: {}\n\n{}", mail.subject(), mail.text())
    );
    insta::assert_snapshot!("digest_email_html", mail.html());
}

#[tokio::test]
async fn sending_again_sends_nothing_new_and_no_paper_is_sent_twice() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("rep@example.com", &[("papers_per_email", "50")]).await;
    let first = app.send_edition("2025-11-06").await;
    assert_eq!(first.sent, 1);
    let again = app.send_edition("2025-11-06").await;
    assert_eq!((again.composed, again.sent), (0, 0), "running it again sends nothing new");
    assert_eq!(app.digests_to("rep@example.com").len(), 1);

    // Switch to a weekly digest on Fridays: the week ending Nov 7 covers Nov 6 too, but
    // those papers were sent already.
    let res = app
        .post_form(&prefs, &[("frequency", "weekly"), ("weekday", "5"), ("papers_per_email", "50")])
        .await;
    assert_eq!(res.status(), 200);
    let weekly = app.send_edition("2025-11-07").await;
    assert_eq!(weekly.sent, 1);
    let mails = app.digests_to("rep@example.com");
    assert_eq!(mails[1].header("x-paperboy-edition").unwrap(), "2025-W45");
    let first_ids: HashSet<_> = mails[0].paper_ids().into_iter().collect();
    let second_ids: HashSet<_> = mails[1].paper_ids().into_iter().collect();
    assert_eq!(first_ids.len(), 13);
    assert!(first_ids.is_disjoint(&second_ids), "a paper is never sent twice");
    let nov7: HashSet<_> =
        app.featured_on("2025-11-07").await.into_iter().map(|p| p.arxiv_id).collect();
    assert_eq!(second_ids, nov7, "the week's papers not sent yet: those of Nov 7");
    assert!(mails[1].subject().starts_with("paperboy weekly · Nov 1 – Nov 7"));
}

#[tokio::test]
async fn weekly_subscribers_get_the_edition_only_on_their_weekday() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("fri@example.com", &[("frequency", "weekly"), ("weekday", "5")]).await;
    app.subscriber("mon@example.com", &[("frequency", "weekly"), ("weekday", "1")]).await;
    let s = app.send_edition("2025-11-07").await; // a Friday
    assert_eq!(s.sent, 1);
    assert_eq!(app.digests_to("fri@example.com").len(), 1);
    assert!(app.digests_to("mon@example.com").is_empty());
    let ids = app.digests_to("fri@example.com")[0].paper_ids();
    assert_eq!(ids[0], "2511.04570", "the week's most upvoted paper (Nov 7) first");
    assert!(ids.contains(&"2511.03276".to_string()), "and Nov 6 is in the week");
}

#[tokio::test]
async fn unconfirmed_and_unsubscribed_subscribers_get_nothing() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscribe("pending@example.com", "").await;
    let gone = app.subscriber("gone@example.com", &[]).await;
    app.unsubscribe(&gone).await;
    app.subscriber("ok@example.com", &[]).await;
    let s = app.send_edition("2025-11-06").await;
    assert_eq!(s.sent, 1);
    assert!(app.digests_to("pending@example.com").is_empty());
    assert!(app.digests_to("gone@example.com").is_empty());
    assert_eq!(app.digests_to("ok@example.com").len(), 1);
}

#[tokio::test]
async fn an_unsubscribe_cancels_a_digest_already_queued() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("late@example.com", &[]).await;
    app.queue_edition("2025-11-06").await;
    let unsubscribe = prefs.replace("/preferences/", "/unsubscribe/");
    app.post_raw_form(&unsubscribe, "List-Unsubscribe=One-Click").await;
    let s = app.send_edition("2025-11-06").await;
    assert_eq!((s.sent, s.cancelled), (0, 1));
    assert!(app.digests_to("late@example.com").is_empty());
}

#[tokio::test]
async fn hostile_titles_are_escaped_in_the_html_part() {
    let up = Upstream::start().await;
    let mut items = crate::upstream::hf_day("2025-11-06");
    items[0]["paper"]["title"] = serde_json::json!("<img src=x onerror=alert(1)> & \"Friends\"");
    up.set_day("2025-11-06", items);
    let app = spawn_app_for_sends(&[]).await;
    // Hugging Face only: an arXiv ingest would bring arXiv's own title for this paper.
    app.ingest_huggingface(&up, "2025-11-06").await;
    app.subscriber("xss@example.com", &[]).await;
    app.send_edition("2025-11-06").await;
    let mail = &app.digests_to("xss@example.com")[0];
    let html = mail.html();
    assert!(!html.contains("<img src=x"), "no live markup from paper text");
    assert!(
        html.contains("&#60;img src=x onerror=alert(1)&#62; &#38; &#34;Friends&#34;"),
        "{html}"
    );
    assert!(
        mail.text().contains("<img src=x onerror=alert(1)> & \"Friends\""),
        "the text part is plain"
    );
}

#[tokio::test]
async fn a_day_with_nothing_matching_sends_nothing() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("niche@example.com", &[("topics", "quantum chromodynamics")]).await;
    app.subscriber("picky@example.com", &[("min_upvotes", "100000")]).await;
    let s = app.send_edition("2025-11-06").await;
    assert_eq!((s.composed, s.sent, s.skipped), (2, 0, 2));
    assert!(app.smtp.messages().iter().all(|m| m.header("x-paperboy-edition").is_none()));
    let statuses: Vec<_> = app.deliveries().await.into_iter().map(|d| d.status).collect();
    assert_eq!(statuses, [DeliveryStatus::Skipped, DeliveryStatus::Skipped]);
}

#[tokio::test]
async fn smtp_trouble_is_retried_by_the_next_send_and_delivered_once() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("retry@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectTransient);
    let s = app.send_edition("2025-11-06").await;
    assert_eq!((s.sent, s.retrying), (0, 1));
    let error = app.deliveries().await[0].last_error.clone().unwrap();
    assert!(error.contains("(451): 4.3.0 try again later"), "the reply is kept: {error}");

    app.smtp.set_mode(Mode::Accept);
    let s = app.send_edition("2025-11-06").await;
    assert_eq!(
        s.sent, 1,
        "pending deliveries of the edition are attempted again, even before their retry time"
    );
    assert_eq!(app.digests_to("retry@example.com").len(), 1);
    assert_eq!(app.send_edition("2025-11-06").await.composed, 0);
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_not_retried() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("bounce@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    let s = app.send_edition("2025-11-06").await;
    assert_eq!(s.failed, 1);
    let delivery = &app.deliveries().await[0];
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    let error = delivery.last_error.as_deref().unwrap();
    assert!(error.contains("(550): 5.7.1 message refused by policy"), "the reply is kept: {error}");
    app.smtp.set_mode(Mode::Accept);
    assert_eq!(app.send_edition("2025-11-06").await.composed, 0);
}

#[tokio::test]
async fn the_unsubscribe_button_of_a_received_digest_works_in_one_click() {
    let (app, _up) = app_with_papers(ENV).await;
    app.subscriber("click@example.com", &[]).await;
    app.send_edition("2025-11-06").await;
    let mail = &app.digests_to("click@example.com")[0];
    let header = mail.header("list-unsubscribe").unwrap();
    let url = header.trim_start_matches('<').trim_end_matches('>');
    let res = app
        .post_raw_form(&crate::smtp::url_path(url), mail.header("list-unsubscribe-post").unwrap())
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.status_of("click@example.com").await.as_deref(), Some("unsubscribed"));
    // The visible link in the text part leads to the same place.
    assert!(mail.text().contains(url));
    assert_eq!(app.send_edition("2025-11-07").await.composed, 0, "no more digests");
}

#[tokio::test]
async fn the_preferences_page_previews_the_digest_and_follows_changes() {
    let (app, _up) = app_with_papers(ENV).await;
    let prefs = app.subscriber("preview@example.com", &[("topics", "tabular")]).await;
    let page = app.get_page(&prefs).await;
    let preview = section(&page, "id=\"preview\"");
    assert!(preview.contains("Preview: your digest for Fri, Nov 7"), "{preview}");
    let saved =
        app.post_form(&prefs, &[("topics", "video generation")]).await.text().await.unwrap();
    // The whole page, as saved: the form as the subscriber filled it, the (empty) lists of
    // sent papers, papers like these and past digests, the feed, and the preview of the
    // latest day (Fri, Nov 7) for the new topic, with why each paper is there.
    let _snapshots = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("preferences_page", saved);
    let preview = section(&saved, "id=\"preview\"");
    assert!(preview.contains("Why: matches: video generation"), "{preview}");
    let none =
        app.post_form(&prefs, &[("topics", "quantum chromodynamics")]).await.text().await.unwrap();
    assert!(section(&none, "id=\"preview\"").contains("Nothing from the latest papers matches"));
}

#[tokio::test]
async fn serve_queues_and_delivers_when_a_subscribers_hour_has_come() {
    let up = Upstream::start().await;
    let app = spawn_app_with(&[]).await;
    app.seed_papers(&up).await;
    app.subscriber("early@example.com", &[("delivery_hour", "0"), ("time_zone", "UTC")]).await;
    // A zone where it is not yet 23:00: the subscriber's hour has not come.
    let zone = (0..=12)
        .map(|h| format!("Etc/GMT+{h}"))
        .find(|z| {
            let tz: chrono_tz::Tz = z.parse().unwrap();
            chrono::Timelike::hour(&chrono::Utc::now().with_timezone(&tz)) < 22
        })
        .unwrap();
    app.subscriber("later@example.com", &[("delivery_hour", "23"), ("time_zone", zone.as_str())])
        .await;

    let queued = plan::queue_due(&app.db).await.unwrap();
    assert_eq!(queued, 1);
    let mail = app.smtp.wait_for_mail_to("early@example.com", 2).await;
    assert_eq!(
        mail.header("x-paperboy-edition").as_deref(),
        Some("2025-11-07"),
        "the latest complete paper day"
    );
    assert_eq!(plan::queue_due(&app.db).await.unwrap(), 0, "once a day");
    assert!(app.digests_to("later@example.com").is_empty());
}

#[tokio::test]
async fn the_send_rate_caps_messages_per_second() {
    let (app, _up) = app_with_papers(&[("PAPERBOY_SEND_RATE", "2")]).await;
    for i in 0..5 {
        app.subscriber(&format!("rate{i}@example.com"), &[]).await;
    }
    let started = std::time::Instant::now();
    let s = app.send_edition("2025-11-06").await;
    assert_eq!(s.sent, 5);
    // Two a second: the burst allows two at once, the other three need at least 1.5 s.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1400), "{:?}", started.elapsed());
}
