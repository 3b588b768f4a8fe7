//! Ranking that learns: 👍/👎 links in every digest, the rating pages, the next edition
//! changing, undo, purpose-bound links, acronyms learned at ingest.

use reqwest::StatusCode;

use crate::helpers::{app_with_papers, date, extract_path, section};

/// The preferences page's list of sent papers, and its preview.
const SENT: &str = "id=\"sent\"";
const PREVIEW: &str = "id=\"preview\"";

#[tokio::test]
async fn every_paper_carries_rating_links_and_following_one_changes_nothing() {
    let (app, _up) = app_with_papers(&[]).await;
    app.subscriber("rater@example.com", &[("papers_per_email", "3")]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("rater@example.com")[0];
    let links = digest.rating_paths();
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
    assert!(app.ratings_of("rater@example.com").await.is_empty(), "a GET rates nothing");

    let res = app.post_form(up, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("will rank higher in your next digest"), "{body}");
    assert_eq!(app.ratings_of("rater@example.com").await, [(id.clone(), 1)]);
    // The same link again, or the other one: one rating per paper, the latest wins.
    let body = app.post_form(down, &[]).await.text().await.unwrap();
    assert!(body.contains("will not be sent to you again"), "{body}");
    assert_eq!(app.ratings_of("rater@example.com").await, [(id.clone(), -1)]);
    // Undo.
    let undo = extract_path(&body, "/rate/").unwrap();
    assert!(undo.ends_with(&format!("/{id}/clear")), "{undo}");
    let body = app.post_form(&undo, &[]).await.text().await.unwrap();
    assert!(body.contains("Rating removed"));
    assert!(app.ratings_of("rater@example.com").await.is_empty());
}

#[tokio::test]
async fn ratings_reorder_the_next_digest_name_the_liked_paper_and_a_paper_rated_down_never_comes() {
    let (app, _up) = app_with_papers(&[]).await;
    // No topics: until they rate, the most upvoted papers; the control never rates.
    app.subscriber("video@example.com", &[("papers_per_email", "3")]).await;
    app.subscriber("control@example.com", &[("papers_per_email", "3")]).await;
    app.send_edition("2025-11-06").await;
    let first = &app.digests_to("video@example.com")[0];
    let links = first.rating_paths();
    let ids: Vec<&str> = links.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(ids, ["2511.03276", "2511.03334", "2511.03001"], "trending");
    // 👍 the audio-and-video generation paper, 👎 the diffusion language models one.
    assert_eq!(app.post_form(&links[1].1, &[]).await.status(), StatusCode::OK);
    assert_eq!(app.post_form(&links[0].2, &[]).await.status(), StatusCode::OK);
    // And 👎 the next day's top paper, reached by its own link (same token, other paper).
    let token = links[0].1.split('/').nth(2).unwrap();
    let top_next_day = format!("/rate/{token}/2511.04570/down");
    assert_eq!(app.post_form(&top_next_day, &[]).await.status(), StatusCode::OK);

    app.send_edition("2025-11-07").await;
    let control = app.digests_to("control@example.com")[1].paper_ids();
    assert_eq!(control, ["2511.04570", "2511.04460", "2511.03773"], "what ratings change");
    let next = &app.digests_to("video@example.com")[1];
    let next_ids = next.paper_ids();
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
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("page@example.com", &[("papers_per_email", "3")]).await;
    let before = app.get_page(&prefs).await;
    assert!(
        section(&before, SENT).contains("Papers from your digests of the last 30 days appear here")
    );
    app.send_edition("2025-11-06").await;

    // (The section's heading is there before anything was sent: its list is what counts.)
    let page = app.get_page(&prefs).await;
    let sent = section(&page, SENT);
    assert!(sent.contains("<ul class=\"rated-list\">"), "{sent}");
    assert!(sent.contains("Diffusion Language Models are Super Data Learners"), "{sent}");
    let manage_token = prefs.rsplit('/').next().unwrap();
    let up = sent
        .split("action=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|a| a.ends_with("/2511.03334/up"))
        .expect("a 👍 form for a sent paper")
        .to_string();
    assert!(sent.contains(&format!("name=\"back\" value=\"{manage_token}\"")));

    // The form goes back to the preferences page, where the rating shows.
    let res = app.post_form(&up, &[("back", manage_token)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("{prefs}#sent"));
    let page = app.get_page(&prefs).await;
    assert!(section(&page, SENT).contains("You rated 👍"), "{page}");
    assert!(
        section(&page, PREVIEW).contains("which you rated up"),
        "the live preview names the liked paper"
    );

    // A rating form cannot be made to reveal a manage link: a forged `back` is ignored.
    let other = app.subscriber("other@example.com", &[]).await;
    let res = app
        .post_form(&up.replace("/up", "/down"), &[("back", other.rsplit('/').next().unwrap())])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.text().await.unwrap().contains("/preferences/"));

    let undo = up.replace("/up", "/clear");
    let res = app.post_form(&undo, &[("back", manage_token)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(app.ratings_of("page@example.com").await.is_empty());
    let page = app.get_page(&prefs).await;
    assert!(!section(&page, SENT).contains("You rated"));
    assert!(!section(&page, PREVIEW).contains("which you rated up"));
}

#[tokio::test]
async fn rating_links_are_bound_to_their_purpose_and_anything_else_is_not_found() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("bound@example.com", &[("papers_per_email", "1")]).await;
    app.send_edition("2025-11-06").await;
    let (id, up, _) = app.digests_to("bound@example.com")[0].rating_paths().remove(0);
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
        assert_eq!(app.post_form(&path, &[]).await.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    // A rating link opens no manage page.
    assert_eq!(
        app.get(&format!("/preferences/{rate_token}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_form(&format!("/unsubscribe/{rate_token}"), &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.status_of("bound@example.com").await.as_deref(), Some("confirmed"));
    // A confirmation link is not a rating link either.
    app.subscribe("pending@example.com", "").await;
    let confirm = app.confirmation_link("pending@example.com", 1).await;
    let confirm_token = confirm.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        app.post_form(&format!("/rate/{confirm_token}/{id}/up"), &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(app.ratings_of("bound@example.com").await.is_empty());
}

#[tokio::test]
async fn acronyms_learned_at_ingest_match_topics_both_ways() {
    let (app, _up) = app_with_papers(&[]).await;
    let learned: Vec<String> = paperboy::store::lexicon::acronyms(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|(short, _, _)| short == "llm")
        .map(|(_, long, _)| long)
        .collect();
    assert_eq!(learned.first().map(String::as_str), Some("larg languag model"), "{learned:?}");

    app.subscriber(
        "long@example.com",
        &[("topics", "large language models"), ("papers_per_email", "50")],
    )
    .await;
    app.subscriber("short@example.com", &[("topics", "LLM"), ("papers_per_email", "50")]).await;
    app.send_edition("2025-11-06").await;
    app.send_edition("2025-11-07").await;
    let long: Vec<String> =
        app.digests_to("long@example.com").iter().flat_map(|d| d.paper_ids()).collect();
    // These two only ever write "LLM(s)".
    for id in ["2511.02309", "2511.03718"] {
        assert!(long.contains(&id.to_string()), "{id} missing from {long:?}");
    }
    let short: Vec<String> =
        app.digests_to("short@example.com").iter().flat_map(|d| d.paper_ids()).collect();
    // And these two only "large language models".
    for id in ["2511.04655", "2511.02280"] {
        assert!(short.contains(&id.to_string()), "{id} missing from {short:?}");
    }
}

#[tokio::test]
async fn the_trend_knob_is_saved_and_checked() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("knob@example.com", &[("trend_weight", "80")]).await;
    let page = app.get_page(&prefs).await;
    assert!(page.contains(
        "name=\"trend_weight\" type=\"range\" min=\"0\" max=\"100\" step=\"5\" value=\"80\""
    ));
    let res = app.post_form(&prefs, &[("trend_weight", "101")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("Please choose a weight from 0 to 100."));
    assert_eq!(app.export_of(&prefs).await["preferences"]["trend_weight"], 80, "kept");
}

#[tokio::test]
async fn papers_stored_before_the_lexicon_existed_are_read_once() {
    let (app, _up) = app_with_papers(&[]).await;
    use paperboy::store::lexicon;
    let docs = || async { lexicon::documents(&app.db).await.unwrap() as i64 };
    let total = paperboy::store::papers::estimated_count(&app.db).await.unwrap();
    assert_eq!(docs().await, total, "ingest counts what it stores");
    // Raw SQL: the state after the upgrade that added the lexicon (nothing counted yet);
    // no interface un-reads papers.
    sqlx::query("UPDATE papers SET lexicon_at = NULL").execute(&app.db).await.unwrap();
    sqlx::query("TRUNCATE lexicon_terms, acronyms").execute(&app.db).await.unwrap();
    assert_eq!(docs().await, 0);
    assert_eq!(lexicon::index_new(&app.db).await.unwrap(), total as u64);
    assert_eq!(lexicon::index_new(&app.db).await.unwrap(), 0, "read once");
    assert_eq!(docs().await, total);
    let df = lexicon::frequencies(&app.db, &["tabular".to_string()]).await.unwrap();
    assert!(df[0].1 >= 2, "the two tabular papers of 2025-11-06: {df:?}");
    let acronyms = lexicon::acronyms(&app.db).await.unwrap();
    assert!(acronyms.iter().any(|(short, _, _)| short == "llm"), "{acronyms:?}");
}

#[tokio::test]
async fn a_topic_whose_papers_are_rated_down_counts_less_and_the_subscriber_is_told() {
    let (app, _up) = app_with_papers(&[]).await;
    app.subscriber("doubter@example.com", &[("topics", "tabular"), ("papers_per_email", "4")])
        .await;
    app.send_edition("2025-11-06").await;
    let links = app.digests_to("doubter@example.com")[0].rating_paths();
    assert!(links.len() >= 2, "the topic finds papers: {links:?}");

    // One paper rated down hardly moves the topic (two ratings each way are assumed);
    // a second one does.
    let first = app.post_form(&links[0].2, &[]).await.text().await.unwrap();
    assert!(first.contains("Noted: less like this"), "{first}");
    assert!(!first.contains("counts less in your digests"), "{first}");
    let mut last = String::new();
    for (_, _, down) in &links[1..] {
        last = app.post_form(down, &[]).await.text().await.unwrap();
    }
    assert!(last.contains("Your topic “tabular” counts less in your digests"), "{last}");
    let id = app.subscriber_id("doubter@example.com").await;
    let stored: serde_json::Value = paperboy::store::ratings::taste(&app.db, id).await.unwrap();
    let trust = stored["topic_trust"][0][1].as_f64().unwrap();
    assert!(trust < 1.0 && trust > 0.0, "{stored}");

    // Rating the topic's papers up again restores it.
    for (_, up, _) in &links {
        app.post_form(up, &[]).await;
    }
    let page = app.post_form(&links[0].1, &[]).await.text().await.unwrap();
    assert!(!page.contains("counts less in your digests"), "{page}");
}

#[tokio::test]
async fn only_papers_sent_to_the_reader_or_on_the_public_archive_can_be_rated() {
    let (app, _up) = app_with_papers(&[]).await;
    app.subscriber("picky@example.com", &[("papers_per_email", "1")]).await;
    app.send_edition("2025-11-06").await;
    let (sent, up, _) = app.digests_to("picky@example.com")[0].rating_paths().remove(0);
    let token = up.split('/').nth(2).unwrap().to_string();
    // An arXiv announcement that was never sent to this reader and is on no public page.
    let unseen = "2511.00042";
    let announced = paperboy::domain::AnnouncedPaper {
        arxiv_id: paperboy::domain::ArxivId::parse(unseen).unwrap(),
        version: Some(1),
        title: "Unseen".into(),
        abstract_text: "Never sent.".into(),
        authors: vec!["A. Author".into()],
        categories: vec!["cs.LG".into()],
        announce_type: "new".into(),
        announced_on: date("2025-11-06"),
    };
    let mut conn = app.db.acquire().await.unwrap();
    paperboy::store::papers::upsert_announced(&mut conn, &announced).await.unwrap();
    drop(conn);
    let path = format!("/rate/{token}/{unseen}/up");
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.post_form(&path, &[]).await.status(), StatusCode::NOT_FOUND);
    // A paper of the public archive (Nov 7, not sent) can be rated, as can the one sent.
    let archived = app
        .featured_on("2025-11-07")
        .await
        .into_iter()
        .map(|p| p.arxiv_id)
        .find(|id| *id != sent)
        .unwrap();
    let day = app.get_page("/days/2025-11-07").await;
    assert!(day.contains(&archived), "the paper is on the public archive");
    assert_eq!(
        app.post_form(&format!("/rate/{token}/{archived}/down"), &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_form(&format!("/rate/{token}/{sent}/up"), &[]).await.status(),
        StatusCode::OK
    );
    let mut expected = vec![(archived, -1), (sent, 1)];
    expected.sort();
    assert_eq!(app.ratings_of("picky@example.com").await, expected);
}

#[tokio::test]
async fn a_reader_with_thousands_of_ratings_still_rates_and_their_taste_stays_bounded() {
    let (app, _up) = app_with_papers(&[]).await;
    app.subscriber("heavy@example.com", &[("papers_per_email", "1")]).await;
    app.send_edition("2025-11-06").await;
    let (sent, up, _) = app.digests_to("heavy@example.com")[0].rating_paths().remove(0);
    // 3,000 older ratings of papers on the archive. Raw SQL: a history of months, made
    // at once (no interface backdates a paper or a rating).
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
    let res = app.post_form(&up, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = app.subscriber_id("heavy@example.com").await;
    let taste: serde_json::Value = paperboy::store::ratings::taste(&app.db, id).await.unwrap();
    let liked = taste["liked"].as_array().unwrap();
    assert_eq!(liked.len(), 200, "the taste keeps the papers the latest 200 ratings liked");
    assert_eq!(liked[0][0], sent.as_str(), "the newest rating is the first it names");
}
