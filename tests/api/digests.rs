//! Personalised digests through the fixture days, the SMTP capture and Postgres.

use std::collections::HashSet;

use chrono::NaiveDate;
use paperboy::digests::plan::{self, SendSummary};

use crate::helpers::{
    BASE_URL, TestApp, app_with_papers, digests_to, paper_ids, seed_papers, send_edition,
    spawn_app_for_sends, spawn_app_with, subscriber,
};
use crate::smtp::Mode;
use crate::upstream::Upstream;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn setup() -> (TestApp, Upstream) {
    app_with_papers(&[("PAPERBOY_RETRY_BASE_MS", "100")]).await
}

async fn send(app: &TestApp, date: &str) -> SendSummary {
    send_edition(app, date).await
}

async fn ids_where(app: &TestApp, sql: &str) -> HashSet<String> {
    sqlx::query_scalar::<_, String>(sql).fetch_all(&app.db).await.unwrap().into_iter().collect()
}

#[tokio::test]
async fn each_profile_gets_its_own_papers_in_order_with_reasons() {
    let (app, _up) = setup().await;
    subscriber(
        &app,
        "topics@example.com",
        &[("topics", "video generation, tabular"), ("papers_per_email", "3")],
    )
    .await;
    subscriber(&app, "robots@example.com", &[("categories", "cs.RO")]).await;
    subscriber(&app, "author@example.com", &[("authors", "pratinav seth")]).await;
    subscriber(&app, "anything@example.com", &[]).await;

    let summary = send(&app, "2025-11-06").await;
    assert_eq!((summary.composed, summary.sent, summary.skipped, summary.failed), (4, 4, 0, 0));

    let topics = &digests_to(&app, "topics@example.com")[0];
    assert_eq!(
        paper_ids(topics),
        ["2511.03334", "2511.02802", "2511.02818"],
        "title matches by upvotes, capped at 3"
    );
    let text = topics.text();
    assert!(text.contains("Why: matches: video generation"), "{text}");
    assert!(text.contains("Why: matches: tabular"));
    assert!(topics.html().contains("Why: matches: video generation"));

    let robots = &digests_to(&app, "robots@example.com")[0];
    let expected = ids_where(
        &app,
        "SELECT arxiv_id FROM papers WHERE 'cs.RO' = ANY(categories) AND featured_on = '2025-11-06'",
    )
    .await;
    assert!(!expected.is_empty());
    assert_eq!(paper_ids(robots).into_iter().collect::<HashSet<_>>(), expected);
    assert!(robots.text().contains("Why: category cs.RO"));

    let author = &digests_to(&app, "author@example.com")[0];
    assert_eq!(paper_ids(author), ["2511.02802", "2511.02818"]);
    assert!(author.text().contains("Why: by pratinav seth"));

    let anything = &digests_to(&app, "anything@example.com")[0];
    let ids = paper_ids(anything);
    assert_eq!(ids.len(), 10, "the default cap");
    assert_eq!(ids[0], "2511.03276", "the most upvoted first");
    let upvotes: Vec<i32> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(
                sqlx::query_scalar("SELECT upvotes FROM papers WHERE arxiv_id = $1")
                    .bind(id)
                    .fetch_one(&app.db)
                    .await
                    .unwrap(),
            );
        }
        v
    };
    assert!(upvotes.windows(2).all(|w| w[0] >= w[1]), "{upvotes:?}");
    assert!(anything.text().contains("Why: trending with 132 upvotes"));
}

#[tokio::test]
async fn a_digest_carries_the_contract_headers_and_links() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "hdr@example.com", &[("topics", "diffusion")]).await;
    send(&app, "2025-11-06").await;
    let mail = &digests_to(&app, "hdr@example.com")[0];
    let token = prefs.trim_start_matches("/preferences/");

    assert!(mail.header("content-type").unwrap().contains("multipart/alternative"));
    assert_eq!(
        mail.header("list-unsubscribe").unwrap(),
        format!("<{BASE_URL}/unsubscribe/{token}>")
    );
    assert_eq!(mail.header("list-unsubscribe-post").unwrap(), "List-Unsubscribe=One-Click");
    assert!(mail.header("list-id").unwrap().contains("<digest.paperboy.test>"));
    assert_eq!(mail.header("x-paperboy-edition").unwrap(), "2025-11-06");
    let subject = mail.subject();
    assert!(subject.contains("Thu, Nov 6"), "{subject}");
    assert!(subject.contains("Diffusion Language Models are Super Data Learners"), "{subject}");

    let (message_id, status): (Option<String>, String) =
        sqlx::query_as("SELECT message_id, status FROM deliveries")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "sent");
    assert_eq!(message_id, mail.header("message-id"), "the Message-ID sent is the one recorded");

    for part in [mail.text(), mail.html()] {
        assert!(part.contains(&format!("{BASE_URL}/preferences/{token}")));
        assert!(part.contains(&format!("{BASE_URL}/unsubscribe/{token}")));
    }
    assert!(
        mail.html().contains("https://huggingface.co/papers/2511.03276"),
        "featured papers link to Hugging Face"
    );
    assert!(mail.html().contains("https://github.com/JinjieNi/MegaDLMs"), "code links");
}

#[tokio::test]
async fn sending_again_sends_nothing_new_and_no_paper_is_sent_twice() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "rep@example.com", &[("papers_per_email", "50")]).await;
    let first = send(&app, "2025-11-06").await;
    assert_eq!(first.sent, 1);
    let again = send(&app, "2025-11-06").await;
    assert_eq!((again.composed, again.sent), (0, 0), "running it again sends nothing new");
    assert_eq!(digests_to(&app, "rep@example.com").len(), 1);

    // Switch to a weekly digest on Fridays: the week ending Nov 7 covers Nov 6 too, but
    // those papers were sent already.
    let res = app
        .post_form(&prefs, &[("frequency", "weekly"), ("weekday", "5"), ("papers_per_email", "50")])
        .await;
    assert_eq!(res.status(), 200);
    let weekly = send(&app, "2025-11-07").await;
    assert_eq!(weekly.sent, 1);
    let mails = digests_to(&app, "rep@example.com");
    assert_eq!(mails[1].header("x-paperboy-edition").unwrap(), "2025-W45");
    let first_ids: HashSet<_> = paper_ids(&mails[0]).into_iter().collect();
    let second_ids: HashSet<_> = paper_ids(&mails[1]).into_iter().collect();
    assert_eq!(first_ids.len(), 13);
    assert!(first_ids.is_disjoint(&second_ids), "a paper is never sent twice");
    let nov7 =
        ids_where(&app, "SELECT arxiv_id FROM papers WHERE featured_on = '2025-11-07'").await;
    assert_eq!(second_ids, nov7);
    assert!(mails[1].subject().starts_with("paperboy weekly · Nov 1 – Nov 7"));
}

#[tokio::test]
async fn weekly_subscribers_get_the_edition_only_on_their_weekday() {
    let (app, _up) = setup().await;
    subscriber(&app, "fri@example.com", &[("frequency", "weekly"), ("weekday", "5")]).await;
    subscriber(&app, "mon@example.com", &[("frequency", "weekly"), ("weekday", "1")]).await;
    let s = send(&app, "2025-11-07").await; // a Friday
    assert_eq!(s.sent, 1);
    assert_eq!(digests_to(&app, "fri@example.com").len(), 1);
    assert!(digests_to(&app, "mon@example.com").is_empty());
    let ids = paper_ids(&digests_to(&app, "fri@example.com")[0]);
    assert_eq!(ids[0], "2511.04570", "the week's most upvoted paper (Nov 7) first");
    assert!(ids.contains(&"2511.03276".to_string()), "and Nov 6 is in the week");
}

#[tokio::test]
async fn unconfirmed_and_unsubscribed_subscribers_get_nothing() {
    let (app, _up) = setup().await;
    app.subscribe("pending@example.com", "").await;
    let gone = subscriber(&app, "gone@example.com", &[]).await;
    app.post_form(&gone.replace("/preferences/", "/unsubscribe/"), &[]).await;
    subscriber(&app, "ok@example.com", &[]).await;
    let s = send(&app, "2025-11-06").await;
    assert_eq!(s.sent, 1);
    assert!(digests_to(&app, "pending@example.com").is_empty());
    assert!(digests_to(&app, "gone@example.com").is_empty());
    assert_eq!(digests_to(&app, "ok@example.com").len(), 1);
}

#[tokio::test]
async fn an_unsubscribe_cancels_a_digest_already_queued() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "late@example.com", &[]).await;
    let edition = paperboy::digests::ranking::Edition::daily(day("2025-11-06"));
    let id = paperboy::store::editions::ensure(&app.db, &edition).await.unwrap();
    paperboy::store::deliveries::create_for_edition(&app.db, id, &edition).await.unwrap();
    app.post_form(
        &prefs.replace("/preferences/", "/unsubscribe/"),
        &[("List-Unsubscribe", "One-Click")],
    )
    .await;
    let s = send(&app, "2025-11-06").await;
    assert_eq!((s.sent, s.cancelled), (0, 1));
    assert!(digests_to(&app, "late@example.com").is_empty());
}

#[tokio::test]
async fn hostile_titles_are_escaped_in_the_html_part() {
    let up = Upstream::start().await;
    let mut items = crate::upstream::hf_day("2025-11-06");
    items[0]["paper"]["title"] = serde_json::json!("<img src=x onerror=alert(1)> & \"Friends\"");
    up.set_day("2025-11-06", items);
    let app = spawn_app_for_sends(&[]).await;
    // Hugging Face only: an arXiv ingest would bring arXiv's own title for this paper.
    let mut settings = app.settings.clone();
    settings.sources.hf_url = up.url.parse().unwrap();
    let sources = paperboy::papers::ingest::Sources::from_settings(&settings);
    paperboy::papers::ingest::huggingface(
        &app.db,
        &sources,
        day("2025-11-06"),
        paperboy::papers::ingest::Trigger::Cli,
    )
    .await
    .unwrap();
    subscriber(&app, "xss@example.com", &[]).await;
    send(&app, "2025-11-06").await;
    let mail = &digests_to(&app, "xss@example.com")[0];
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
    let (app, _up) = setup().await;
    subscriber(&app, "niche@example.com", &[("topics", "quantum chromodynamics")]).await;
    subscriber(&app, "picky@example.com", &[("min_upvotes", "100000")]).await;
    let s = send(&app, "2025-11-06").await;
    assert_eq!((s.composed, s.sent, s.skipped), (2, 0, 2));
    assert!(app.smtp.messages().iter().all(|m| m.header("x-paperboy-edition").is_none()));
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM deliveries").fetch_all(&app.db).await.unwrap();
    assert_eq!(statuses, ["skipped", "skipped"]);
}

#[tokio::test]
async fn smtp_trouble_is_retried_by_the_next_send_and_delivered_once() {
    let (app, _up) = setup().await;
    subscriber(&app, "retry@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectTransient);
    let s = send(&app, "2025-11-06").await;
    assert_eq!((s.sent, s.retrying), (0, 1));
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM deliveries").fetch_one(&app.db).await.unwrap();
    assert!(error.unwrap().contains("451"));

    app.smtp.set_mode(Mode::Accept);
    let s = send(&app, "2025-11-06").await;
    assert_eq!(
        s.sent, 1,
        "pending deliveries of the edition are attempted again, even before their retry time"
    );
    assert_eq!(digests_to(&app, "retry@example.com").len(), 1);
    assert_eq!(send(&app, "2025-11-06").await.composed, 0);
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_not_retried() {
    let (app, _up) = setup().await;
    subscriber(&app, "bounce@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    let s = send(&app, "2025-11-06").await;
    assert_eq!(s.failed, 1);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM deliveries")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains("550"));
    app.smtp.set_mode(Mode::Accept);
    assert_eq!(send(&app, "2025-11-06").await.composed, 0);
}

#[tokio::test]
async fn the_unsubscribe_button_of_a_received_digest_works_in_one_click() {
    let (app, _up) = setup().await;
    subscriber(&app, "click@example.com", &[]).await;
    send(&app, "2025-11-06").await;
    let mail = &digests_to(&app, "click@example.com")[0];
    let header = mail.header("list-unsubscribe").unwrap();
    let url = header.trim_start_matches('<').trim_end_matches('>');
    let res = app
        .client
        .post(app.local(url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(mail.header("list-unsubscribe-post").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.status_of("click@example.com").await.as_deref(), Some("unsubscribed"));
    // The visible link in the text part leads to the same place.
    assert!(mail.text().contains(url));
    assert_eq!(send(&app, "2025-11-07").await.composed, 0, "no more digests");
}

#[tokio::test]
async fn the_preferences_page_previews_the_digest_and_follows_changes() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "preview@example.com", &[("topics", "tabular")]).await;
    let page = app.get(&prefs).await.text().await.unwrap();
    assert!(page.contains("Preview: your digest for Fri, Nov 7"), "{page}");
    let saved =
        app.post_form(&prefs, &[("topics", "video generation")]).await.text().await.unwrap();
    assert!(saved.contains("Why: matches: video generation"), "{saved}");
    assert!(saved.contains(
        "Thinking with Video: Video Generation as a Promising Multimodal Reasoning Paradigm"
    ));
    let none =
        app.post_form(&prefs, &[("topics", "quantum chromodynamics")]).await.text().await.unwrap();
    assert!(none.contains("Nothing from the latest papers matches"));
}

#[tokio::test]
async fn serve_queues_and_delivers_when_a_subscribers_hour_has_come() {
    let up = Upstream::start().await;
    let app = spawn_app_with(&[]).await;
    seed_papers(&app, &up).await;
    subscriber(&app, "early@example.com", &[("delivery_hour", "0"), ("time_zone", "UTC")]).await;
    // A zone where it is not yet 23:00: the subscriber's hour has not come.
    let zone = (0..=12)
        .map(|h| format!("Etc/GMT+{h}"))
        .find(|z| {
            let tz: chrono_tz::Tz = z.parse().unwrap();
            chrono::Timelike::hour(&chrono::Utc::now().with_timezone(&tz)) < 22
        })
        .unwrap();
    subscriber(&app, "later@example.com", &[("delivery_hour", "23"), ("time_zone", zone.as_str())])
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
    assert!(digests_to(&app, "later@example.com").is_empty());
}

#[tokio::test]
async fn the_send_rate_caps_messages_per_second() {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&[("PAPERBOY_SEND_RATE", "2")]).await;
    seed_papers(&app, &up).await;
    for i in 0..5 {
        subscriber(&app, &format!("rate{i}@example.com"), &[]).await;
    }
    let started = std::time::Instant::now();
    let s = send(&app, "2025-11-06").await;
    assert_eq!(s.sent, 5);
    // Two a second: the burst allows two at once, the other three need at least 1.5 s.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1400), "{:?}", started.elapsed());
}
