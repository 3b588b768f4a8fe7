//! Ranking that learns: 👍/👎 links in every digest, the rating pages, the next edition
//! changing, undo, purpose-bound links, acronyms learned at ingest.

use reqwest::StatusCode;

use crate::helpers::{
    TestApp, app_with_papers, digests_to, extract_path, paper_ids, send_edition, subscriber,
};
use crate::smtp::{Received, url_path};
use crate::upstream::Upstream;

async fn setup() -> (TestApp, Upstream) {
    app_with_papers(&[]).await
}

/// The rating links of a digest's text part, as paths: (paper, up, down).
fn rating_paths(mail: &Received) -> Vec<(String, String, String)> {
    let text = mail.text();
    let links = |label: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(label))
            .map(|url| url_path(url.trim()))
            .collect()
    };
    let (ups, downs) = (links("More like this: "), links("Less like this: "));
    paper_ids(mail)
        .into_iter()
        .zip(ups.into_iter().zip(downs))
        .map(|(id, (up, down))| (id, up, down))
        .collect()
}

async fn ratings_of(app: &TestApp, email: &str) -> Vec<(String, i16)> {
    sqlx::query_as(
        "SELECT r.arxiv_id, r.rating FROM ratings r JOIN subscribers s ON s.id = r.subscriber_id
         WHERE s.email = $1 ORDER BY r.arxiv_id",
    )
    .bind(email)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.post_form(path, &[]).await
}

#[tokio::test]
async fn every_paper_carries_rating_links_and_following_one_changes_nothing() {
    let (app, _up) = setup().await;
    subscriber(&app, "rater@example.com", &[("papers_per_email", "3")]).await;
    send_edition(&app, "2025-11-06").await;
    let digest = &digests_to(&app, "rater@example.com")[0];
    let links = rating_paths(digest);
    assert_eq!(links.len(), 3, "one pair per paper in the text part");
    let html = digest.html();
    for (id, up, down) in &links {
        assert!(up.starts_with("/rate/") && up.ends_with(&format!("/{id}/up")), "{up}");
        assert!(down.ends_with(&format!("/{id}/down")), "{down}");
        assert!(html.contains(&format!("{id}/up\"")) && html.contains(&format!("{id}/down\"")));
    }
    assert_eq!(html.matches("More like this").count(), 3);

    // A mail scanner (or a subscriber) following the link: a page, nothing recorded.
    let (id, up, down) = &links[0];
    let page = app.get(up).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let body = page.text().await.unwrap();
    assert!(body.contains("More like this?"), "{body}");
    assert!(
        body.contains(&format!("action=\"{up}\"")),
        "the pre-selected button posts to the link"
    );
    let body = app.get(down).await.text().await.unwrap();
    assert!(body.contains("Less like this?"));
    assert!(ratings_of(&app, "rater@example.com").await.is_empty(), "a GET rates nothing");

    let res = post(&app, up).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("will rank higher in your next digest"), "{body}");
    assert_eq!(ratings_of(&app, "rater@example.com").await, [(id.clone(), 1)]);
    // The same link again, or the other one: one rating per paper, the latest wins.
    let body = post(&app, down).await.text().await.unwrap();
    assert!(body.contains("will not be sent to you again"), "{body}");
    assert_eq!(ratings_of(&app, "rater@example.com").await, [(id.clone(), -1)]);
    // Undo.
    let undo = extract_path(&body, "/rate/").unwrap();
    assert!(undo.ends_with(&format!("/{id}/clear")), "{undo}");
    let body = post(&app, &undo).await.text().await.unwrap();
    assert!(body.contains("Rating removed"));
    assert!(ratings_of(&app, "rater@example.com").await.is_empty());
}

#[tokio::test]
async fn ratings_reorder_the_next_digest_name_the_liked_paper_and_a_paper_rated_down_never_comes() {
    let (app, _up) = setup().await;
    // No topics: until they rate, the most upvoted papers; the control never rates.
    subscriber(&app, "video@example.com", &[("papers_per_email", "3")]).await;
    subscriber(&app, "control@example.com", &[("papers_per_email", "3")]).await;
    send_edition(&app, "2025-11-06").await;
    let first = &digests_to(&app, "video@example.com")[0];
    let links = rating_paths(first);
    let ids: Vec<&str> = links.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(ids, ["2511.03276", "2511.03334", "2511.03001"], "trending");
    // 👍 the audio-and-video generation paper, 👎 the diffusion language models one.
    assert_eq!(post(&app, &links[1].1).await.status(), StatusCode::OK);
    assert_eq!(post(&app, &links[0].2).await.status(), StatusCode::OK);
    // And 👎 the next day's top paper, reached by its own link (same token, other paper).
    let token = links[0].1.split('/').nth(2).unwrap();
    let top_next_day = format!("/rate/{token}/2511.04570/down");
    assert_eq!(post(&app, &top_next_day).await.status(), StatusCode::OK);

    send_edition(&app, "2025-11-07").await;
    let control = paper_ids(&digests_to(&app, "control@example.com")[1]);
    assert_eq!(control, ["2511.04570", "2511.04460", "2511.03773"], "what ratings change");
    let next = &digests_to(&app, "video@example.com")[1];
    let next_ids = paper_ids(next);
    assert!(!next_ids.contains(&"2511.04570".to_string()), "rated down: {next_ids:?}");
    assert_ne!(next_ids[..2], control[1..], "the ratings reorder the day: {next_ids:?}");
    let text = next.text();
    let why = text.lines().find(|l| l.trim_start().starts_with("Why:")).unwrap();
    assert!(
        why.contains("like “UniAVGen: Unified Audio and Video Generation with …”")
            && why.contains("which you rated up"),
        "the first paper is there for the liked one: {text}"
    );
}

#[tokio::test]
async fn the_preferences_page_lists_sent_papers_to_rate_and_undo_and_its_preview_follows() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "page@example.com", &[("papers_per_email", "3")]).await;
    let before = app.get(&prefs).await.text().await.unwrap();
    assert!(before.contains("Papers from your digests of the last 30 days appear here"));
    send_edition(&app, "2025-11-06").await;

    let page = app.get(&prefs).await.text().await.unwrap();
    assert!(page.contains("Papers you were sent"));
    assert!(page.contains("Diffusion Language Models are Super Data Learners"));
    let manage_token = prefs.rsplit('/').next().unwrap();
    let up = page
        .split("action=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|a| a.ends_with("/2511.03334/up"))
        .expect("a 👍 form for a sent paper")
        .to_string();
    assert!(page.contains(&format!("name=\"back\" value=\"{manage_token}\"")));

    // The form goes back to the preferences page, where the rating shows.
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = client
        .post(format!("{}{up}", app.address))
        .form(&[("back", manage_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("{prefs}#sent"));
    let page = app.get(&prefs).await.text().await.unwrap();
    assert!(page.contains("You rated 👍"), "{page}");
    assert!(page.contains("which you rated up"), "the live preview names the liked paper");

    // A rating form cannot be made to reveal a manage link: a forged `back` is ignored.
    let other = subscriber(&app, "other@example.com", &[]).await;
    let res = client
        .post(format!("{}{}", app.address, up.replace("/up", "/down")))
        .form(&[("back", other.rsplit('/').next().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.text().await.unwrap().contains("/preferences/"));

    let undo = up.replace("/up", "/clear");
    let res = client
        .post(format!("{}{undo}", app.address))
        .form(&[("back", manage_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(ratings_of(&app, "page@example.com").await.is_empty());
    let page = app.get(&prefs).await.text().await.unwrap();
    assert!(!page.contains("You rated"));
    assert!(!page.contains("which you rated up"));
}

#[tokio::test]
async fn rating_links_are_bound_to_their_purpose_and_anything_else_is_not_found() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "bound@example.com", &[("papers_per_email", "1")]).await;
    send_edition(&app, "2025-11-06").await;
    let (id, up, _) = rating_paths(&digests_to(&app, "bound@example.com")[0]).remove(0);
    let rate_token = up.split('/').nth(2).unwrap().to_string();
    let manage_token = prefs.rsplit('/').next().unwrap().to_string();

    let mut tampered = rate_token.clone().into_bytes();
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/rate/{manage_token}/{id}/up"),
        format!("/rate/{tampered}/{id}/up"),
        format!("/rate/{}/{id}/up", "A".repeat(43)),
        format!("/rate/{rate_token}/2511.99999/up"),
        format!("/rate/{rate_token}/{id}/sideways"),
    ] {
        assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND, "GET {path}");
        assert_eq!(post(&app, &path).await.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    // A rating link opens no manage page.
    assert_eq!(
        app.get(&format!("/preferences/{rate_token}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(&app, &format!("/unsubscribe/{rate_token}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.status_of("bound@example.com").await.as_deref(), Some("confirmed"));
    // A confirmation link is not a rating link either.
    app.subscribe("pending@example.com", "").await;
    let mail = app.smtp.wait_for_mail_to("pending@example.com", 1).await;
    let confirm = mail.link("/confirm/").unwrap();
    let confirm_token = url_path(&confirm).rsplit('/').next().unwrap().to_string();
    assert_eq!(
        post(&app, &format!("/rate/{confirm_token}/{id}/up")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(ratings_of(&app, "bound@example.com").await.is_empty());
}

#[tokio::test]
async fn acronyms_learned_at_ingest_match_topics_both_ways() {
    let (app, _up) = setup().await;
    let learned: Vec<String> = sqlx::query_scalar(
        "SELECT long_form FROM acronyms WHERE short = 'llm' ORDER BY papers DESC",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(learned.first().map(String::as_str), Some("larg languag model"), "{learned:?}");

    subscriber(
        &app,
        "long@example.com",
        &[("topics", "large language models"), ("papers_per_email", "50")],
    )
    .await;
    subscriber(&app, "short@example.com", &[("topics", "LLM"), ("papers_per_email", "50")]).await;
    send_edition(&app, "2025-11-06").await;
    send_edition(&app, "2025-11-07").await;
    let long: Vec<String> =
        digests_to(&app, "long@example.com").iter().flat_map(paper_ids).collect();
    // These two only ever write "LLM(s)".
    for id in ["2511.02309", "2511.03718"] {
        assert!(long.contains(&id.to_string()), "{id} missing from {long:?}");
    }
    let short: Vec<String> =
        digests_to(&app, "short@example.com").iter().flat_map(paper_ids).collect();
    // And these two only "large language models".
    for id in ["2511.04655", "2511.02280"] {
        assert!(short.contains(&id.to_string()), "{id} missing from {short:?}");
    }
}

#[tokio::test]
async fn the_trend_knob_is_saved_and_checked() {
    let (app, _up) = setup().await;
    let prefs = subscriber(&app, "knob@example.com", &[("trend_weight", "80")]).await;
    let page = app.get(&prefs).await.text().await.unwrap();
    assert!(page.contains(
        "name=\"trend_weight\" type=\"range\" min=\"0\" max=\"100\" step=\"5\" value=\"80\""
    ));
    let res = app.post_form(&prefs, &[("trend_weight", "101")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("Please choose a weight from 0 to 100."));
    let stored: i16 = sqlx::query_scalar("SELECT trend_weight FROM subscribers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 80);
}

#[tokio::test]
async fn papers_stored_before_the_lexicon_existed_are_read_once() {
    let (app, _up) = setup().await;
    let docs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM papers WHERE lexicon_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM papers").fetch_one(&app.db).await.unwrap();
    assert_eq!(docs().await, total, "ingest counts what it stores");
    // As after the upgrade that added the lexicon: nothing counted yet.
    sqlx::query("UPDATE papers SET lexicon_at = NULL").execute(&app.db).await.unwrap();
    sqlx::query("TRUNCATE lexicon_terms, acronyms").execute(&app.db).await.unwrap();
    assert_eq!(paperboy::store::lexicon::index_new(&app.db).await.unwrap(), total as u64);
    assert_eq!(paperboy::store::lexicon::index_new(&app.db).await.unwrap(), 0, "read once");
    assert_eq!(docs().await, total);
    let (df, llm): (i32, i64) = sqlx::query_as(
        "SELECT (SELECT df FROM lexicon_terms WHERE term = 'tabular'),
                (SELECT count(*) FROM acronyms WHERE short = 'llm')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(df >= 2, "the two tabular papers of 2025-11-06: {df}");
    assert!(llm >= 1);
}

#[tokio::test]
async fn a_topic_whose_papers_are_rated_down_counts_less_and_the_subscriber_is_told() {
    let (app, _up) = setup().await;
    subscriber(&app, "doubter@example.com", &[("topics", "tabular"), ("papers_per_email", "4")])
        .await;
    send_edition(&app, "2025-11-06").await;
    let links = rating_paths(&digests_to(&app, "doubter@example.com")[0]);
    assert!(links.len() >= 2, "the topic finds papers: {links:?}");

    // One paper rated down hardly moves the topic (two ratings each way are assumed);
    // a second one does.
    let first = post(&app, &links[0].2).await.text().await.unwrap();
    assert!(first.contains("Noted: less like this"), "{first}");
    assert!(!first.contains("counts less in your digests"), "{first}");
    let mut last = String::new();
    for (_, _, down) in &links[1..] {
        last = post(&app, down).await.text().await.unwrap();
    }
    assert!(last.contains("Your topic “tabular” counts less in your digests"), "{last}");
    let stored: serde_json::Value = sqlx::query_scalar(
        "SELECT t.model FROM tastes t JOIN subscribers s ON s.id = t.subscriber_id
         WHERE s.email = 'doubter@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let trust = stored["topic_trust"][0][1].as_f64().unwrap();
    assert!(trust < 1.0 && trust > 0.0, "{stored}");

    // Rating the topic's papers up again restores it.
    for (_, up, _) in &links {
        post(&app, up).await;
    }
    let page = post(&app, &links[0].1).await.text().await.unwrap();
    assert!(!page.contains("counts less in your digests"), "{page}");
}

#[tokio::test]
async fn only_papers_sent_to_the_reader_or_on_the_public_archive_can_be_rated() {
    let (app, _up) = setup().await;
    subscriber(&app, "picky@example.com", &[("papers_per_email", "1")]).await;
    send_edition(&app, "2025-11-06").await;
    let (sent, up, _) = rating_paths(&digests_to(&app, "picky@example.com")[0]).remove(0);
    let token = up.split('/').nth(2).unwrap().to_string();
    // An arXiv announcement that was never sent to this reader and is on no public page.
    let unseen: String = sqlx::query_scalar(
        "INSERT INTO papers (arxiv_id, title, abstract, authors, announced_on)
         VALUES ('2511.00042', 'Unseen', 'Never sent.', ARRAY['A. Author'], date '2025-11-06')
         RETURNING arxiv_id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let path = format!("/rate/{token}/{unseen}/up");
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(post(&app, &path).await.status(), StatusCode::NOT_FOUND);
    // A paper of the public archive (Nov 7, not sent) can be rated, as can the one sent.
    let archived: String = sqlx::query_scalar(
        "SELECT arxiv_id FROM papers WHERE featured_on = '2025-11-07' AND arxiv_id <> $1 LIMIT 1",
    )
    .bind(&sent)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let day = app.get("/days/2025-11-07").await.text().await.unwrap();
    assert!(day.contains(&archived), "the paper is on the public archive");
    assert_eq!(
        post(&app, &format!("/rate/{token}/{archived}/down")).await.status(),
        StatusCode::OK
    );
    assert_eq!(post(&app, &format!("/rate/{token}/{sent}/up")).await.status(), StatusCode::OK);
    let mut expected = vec![(archived, -1), (sent, 1)];
    expected.sort();
    assert_eq!(ratings_of(&app, "picky@example.com").await, expected);
}

#[tokio::test]
async fn a_reader_with_thousands_of_ratings_still_rates_and_their_taste_stays_bounded() {
    let (app, _up) = setup().await;
    subscriber(&app, "heavy@example.com", &[("papers_per_email", "1")]).await;
    send_edition(&app, "2025-11-06").await;
    let (sent, up, _) = rating_paths(&digests_to(&app, "heavy@example.com")[0]).remove(0);
    // 3,000 older ratings of papers on the archive.
    sqlx::query(
        "INSERT INTO papers (arxiv_id, title, abstract, authors, featured_on)
         SELECT 'old.' || n, 'Old paper ' || n, 'An abstract about diffusion number ' || n,
                ARRAY['A. Author'], date '2025-01-01'
         FROM generate_series(1, 3000) n",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO ratings (subscriber_id, arxiv_id, rating, rated_at)
         SELECT s.id, 'old.' || n, 1, now() - n * interval '1 minute'
         FROM subscribers s, generate_series(1, 3000) n WHERE s.email = 'heavy@example.com'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let res = post(&app, &up).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (liked, first): (i32, String) = sqlx::query_as(
        "SELECT jsonb_array_length(t.model->'liked'), t.model->'liked'->0->>0 FROM tastes t
         JOIN subscribers s ON s.id = t.subscriber_id WHERE s.email = 'heavy@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(liked, 200, "the taste keeps the papers the latest 200 ratings liked");
    assert_eq!(first, sent, "the newest rating is the first it names");
}
