//! Ingest from the fixture-backed stand-ins for Hugging Face and arXiv.

use std::time::Duration;

use paperboy::papers::ingest::{self, IngestError, Sources, Trigger};
use paperboy::store::papers;
use serde_json::json;

use crate::helpers::{TestApp, date as day, spawn_app_with_upstream};
use crate::upstream::{Fault, Upstream, hf_day};

/// The app pointed at a fresh stand-in, retrying fast and giving up soon, and the sources
/// `paperboy ingest` would read.
async fn setup() -> (TestApp, Upstream, std::sync::Arc<Sources>) {
    let upstream = Upstream::start().await;
    let app = spawn_app_with_upstream(
        &upstream,
        &[("PAPERBOY_FETCH_RETRY_BASE_MS", "50"), ("PAPERBOY_FETCH_TIMEOUT_SECS", "2")],
    )
    .await;
    let sources = Sources::from_settings(&app.settings);
    (app, upstream, sources)
}

#[tokio::test]
async fn a_real_day_is_stored_completely_with_its_fields() {
    let (app, _up, sources) = setup().await;
    let summary =
        ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    assert_eq!(summary.to_string(), "huggingface 2025-11-06: fetched 13, new 13, updated 0");
    assert_eq!(app.featured_on("2025-11-06").await.len(), 13);

    // As a digest reads it (with its keywords), and as its page shows it (organization).
    let id = ["2511.03276".to_string()];
    let paper = paperboy::store::editions::papers(&app.db, &id).await.unwrap().remove(0);
    assert_eq!(paper.title, "Diffusion Language Models are Super Data Learners");
    assert!(paper.abstract_text.starts_with(
        "Under strictly controlled pre-training settings, we observe a Crossover: when unique data"
    ));
    assert!(!paper.abstract_text.contains('\n'), "hard line breaks are folded");
    assert_eq!(paper.authors.len(), 8);
    assert_eq!(paper.authors[0], "Jinjie Ni");
    assert_eq!(paper.authors[7], "Michael Qizhe Shieh");
    assert_eq!(paper.upvotes, 132);
    assert!(paper.ai_summary.unwrap().starts_with("Diffusion language models outperform"));
    assert!(paper.ai_keywords.contains(&"Monte Carlo augmentation".to_string()));
    assert_eq!(paper.github_repo.as_deref(), Some("https://github.com/JinjieNi/MegaDLMs"));
    assert_eq!(paper.github_stars, Some(339));
    assert_eq!(
        paper.project_page.as_deref(),
        Some("https://github.com/JinjieNi/dlms-are-super-data-learners")
    );
    let page = papers::pages(&app.db, &id).await.unwrap().remove(0);
    assert_eq!(page.card.organization.as_deref(), Some("National University of Singapore"));

    // The full-text index is ready for ranking.
    let hits = papers::search(&app.db, "diffusion language model").await.unwrap();
    assert!(hits.iter().any(|p| p.arxiv_id == "2511.03276"), "{hits:?}");
    let run = app.ingest_runs().await.remove(0);
    assert_eq!((run.status.as_str(), run.fetched), ("succeeded", 13));
}

#[tokio::test]
async fn every_fixture_day_ingests() {
    let (app, _up, sources) = setup().await;
    let mut total = 0;
    for entry in
        std::fs::read_dir(crate::upstream::fixtures_dir().join("huggingface/daily_papers")).unwrap()
    {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let date = day(name.trim_end_matches(".json"));
        let s = ingest::huggingface(&app.db, &sources, date, Trigger::Cli).await.unwrap();
        assert_eq!(s.counts.fetched as usize, hf_day(&date.to_string()).as_array().unwrap().len());
        total += s.counts.fetched;
    }
    assert_eq!(total, 412, "the fixtures' README counts 412 papers");
    assert_eq!(papers::estimated_count(&app.db).await.unwrap(), 412);
}

/// A day of `n` papers made from the fixture's items with fresh ids.
fn big_day(n: usize) -> serde_json::Value {
    let items = hf_day("2025-11-26");
    let items = items.as_array().unwrap();
    json!(
        (0..n)
            .map(|i| {
                let mut item = items[i % items.len()].clone();
                item["paper"]["id"] = json!(format!("2511.{:05}", 90000 + i));
                item["paper"]["submittedOnDailyAt"] = json!("2025-11-26T00:00:00.000Z");
                item
            })
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn paging_follows_until_a_short_page() {
    let (app, up, sources) = setup().await;
    up.set_day("2025-11-26", big_day(250));
    let s = ingest::huggingface(&app.db, &sources, day("2025-11-26"), Trigger::Cli).await.unwrap();
    assert_eq!(s.counts.fetched, 250);
    let pages: Vec<String> = up.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        pages,
        [
            "/api/daily_papers?date=2025-11-26&limit=100&p=0",
            "/api/daily_papers?date=2025-11-26&limit=100&p=1",
            "/api/daily_papers?date=2025-11-26&limit=100&p=2"
        ]
    );
    assert_eq!(app.featured_on("2025-11-26").await.len(), 250);
}

#[tokio::test]
async fn a_day_is_stored_atomically_when_a_later_page_fails() {
    let (app, up, sources) = setup().await;
    up.set_day("2025-11-26", big_day(150));
    up.set_fault(Some(Fault::FailPage(1)));
    let err =
        ingest::huggingface(&app.db, &sources, day("2025-11-26"), Trigger::Cli).await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(papers::estimated_count(&app.db).await.unwrap(), 0, "never half a day");
}

#[tokio::test]
async fn re_ingesting_is_idempotent_and_updates_upvotes() {
    let (app, up, sources) = setup().await;
    let d = day("2025-11-06");
    ingest::huggingface(&app.db, &sources, d, Trigger::Cli).await.unwrap();
    let again = ingest::huggingface(&app.db, &sources, d, Trigger::Cli).await.unwrap();
    assert_eq!((again.counts.inserted, again.counts.updated), (0, 0));

    let mut items = hf_day("2025-11-06");
    items[0]["paper"]["upvotes"] = json!(500);
    items[1]["paper"]["upvotes"] = json!(400);
    up.set_day("2025-11-06", items);
    let later = ingest::huggingface(&app.db, &sources, d, Trigger::Cli).await.unwrap();
    assert_eq!((later.counts.fetched, later.counts.inserted, later.counts.updated), (13, 0, 2));
    let day = app.featured_on("2025-11-06").await;
    assert_eq!(day.len(), 13);
    assert_eq!((day[0].arxiv_id.as_str(), day[0].upvotes), ("2511.03276", 500));
    assert_eq!(papers::estimated_count(&app.db).await.unwrap(), 13);
}

#[tokio::test]
async fn the_same_paper_from_both_sources_is_one_paper() {
    let (app, _up, sources) = setup().await;
    ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    let arxiv = ingest::arxiv(&app.db, &sources, Trigger::Cli).await.unwrap();
    assert_eq!(arxiv.day, day("2025-11-06"));
    assert_eq!(arxiv.counts.fetched, 13);

    let all = app.papers().await;
    let both = all.iter().filter(|p| p.featured_on.is_some() && p.announced_on.is_some()).count();
    assert_eq!(all.len(), 13 + 13 - both, "one row per arXiv id");
    assert!(both > 0);
    let id = ["2511.03276".to_string()];
    let paper = paperboy::store::editions::papers(&app.db, &id).await.unwrap().remove(0);
    assert_eq!(paper.upvotes, 132, "Hugging Face's upvotes survive the arXiv ingest");
    assert_eq!(paper.categories, ["cs.CV", "cs.CL", "cs.LG"]);
    // Raw SQL: the version and the announcement type show nowhere (they decide which
    // arXiv papers an edition takes as new).
    let (version, announce): (Option<i32>, Option<String>) =
        sqlx::query_as("SELECT arxiv_version, announce_type FROM papers WHERE arxiv_id = $1")
            .bind(&id[0])
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(version, Some(2));
    assert_eq!(announce.as_deref(), Some("replace"));

    // And the other way round: Hugging Face after arXiv keeps arXiv's categories.
    let next =
        ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    assert_eq!(next.counts.inserted, 0);
    let paper = paperboy::store::editions::papers(&app.db, &id).await.unwrap().remove(0);
    assert_eq!(paper.categories, ["cs.CV", "cs.CL", "cs.LG"]);
}

#[tokio::test]
async fn withdrawn_papers_are_kept_but_never_shown() {
    let (app, up, sources) = setup().await;
    let mut items = hf_day("2025-11-06");
    items[0]["paper"]["withdrawnAt"] = json!("2025-11-07T10:00:00.000Z");
    up.set_day("2025-11-06", items);
    ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    let withdrawn: Vec<_> =
        app.papers().await.into_iter().filter(|p| p.withdrawn_at.is_some()).collect();
    assert_eq!(withdrawn.len(), 1, "kept");
    let page = app.get_page("/").await;
    assert!(!page.contains("Diffusion Language Models are Super Data Learners"));
    assert!(page.contains("12 papers"));
}

#[tokio::test]
async fn the_landing_page_lists_the_latest_day_by_upvotes_with_titles_escaped() {
    let (app, up, sources) = setup().await;
    let mut items = hf_day("2025-11-07");
    items[0]["paper"]["title"] =
        json!("<script>alert(\"pwned\")</script> & \"Quotes\" <b>bold</b>");
    items[0]["paper"]["upvotes"] = json!(100000);
    up.set_day("2025-11-07", items);
    ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    ingest::huggingface(&app.db, &sources, day("2025-11-07"), Trigger::Cli).await.unwrap();

    let page = app.get_page("/").await;
    assert!(page.contains("Featured on Friday, November 7, 2025"));
    assert!(!page.contains("<script>alert"), "a hostile title is escaped");
    assert!(!page.contains("<b>bold</b>"));
    assert!(page.contains(
        "&#60;script&#62;alert(&#34;pwned&#34;)&#60;/script&#62; &#38; &#34;Quotes&#34;"
    ));
    assert!(
        !page.contains("Diffusion Language Models are Super Data Learners"),
        "only the latest day"
    );

    // Ordered by upvotes, linked to the Hugging Face page, authors shortened.
    let ids: Vec<String> =
        app.featured_on("2025-11-07").await.into_iter().map(|p| p.arxiv_id).collect();
    assert_eq!(ids.len(), 15);
    let positions: Vec<usize> = ids
        .iter()
        .map(|id| {
            let arxiv = format!("href=\"https://arxiv.org/abs/{id}\"");
            assert!(page.contains(&arxiv), "each paper links its arXiv page too");
            page.find(&format!("https://huggingface.co/papers/{id}\"")).expect("each paper linked")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "most upvoted first");
    assert!(page.contains("et al."));
    assert!(page.contains(">Code"), "code links where known");
}

#[tokio::test]
async fn server_errors_and_429_are_retried_with_backoff() {
    let (app, up, sources) = setup().await;
    up.set_fault(Some(Fault::Status { code: 503, times: 2, retry_after: None }));
    let s = ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    assert_eq!(s.counts.fetched, 13);
    assert_eq!(up.requests().len(), 3);

    let started = std::time::Instant::now();
    up.set_fault(Some(Fault::Status { code: 429, times: 1, retry_after: Some(1) }));
    ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After is respected");
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (app, up, sources) = setup().await;
    up.set_fault(Some(Fault::Status { code: 404, times: 10, retry_after: None }));
    let err =
        ingest::huggingface(&app.db, &sources, day("2025-11-06"), Trigger::Cli).await.unwrap_err();
    assert!(err.to_string().contains("404"));
    assert_eq!(up.requests().len(), 1);
}

async fn assert_fails_cleanly(
    app: &TestApp,
    result: Result<ingest::Summary, IngestError>,
    reason: &str,
) {
    let err = result.unwrap_err().to_string();
    assert!(err.contains(reason), "{err:?} should mention {reason:?}");
    let run = app.ingest_runs().await.remove(0);
    assert_eq!(run.status, "failed");
    assert!(run.error.unwrap().contains(reason));
}

#[tokio::test]
async fn broken_responses_fail_the_run_and_keep_earlier_data() {
    let (app, up, sources) = setup().await;
    let d = day("2025-11-06");
    ingest::huggingface(&app.db, &sources, d, Trigger::Cli).await.unwrap();
    let before = app.featured_on("2025-11-06").await;

    let body = crate::upstream::fixture("huggingface/daily_papers/2025-11-06.json");
    let cases: Vec<(Fault, &str)> = vec![
        (Fault::Body(body[..body.len() / 2].to_vec()), "not a JSON array"),
        (
            Fault::Body(b"<!DOCTYPE html><html><body>Bad gateway</body></html>".to_vec()),
            "HTML page",
        ),
        (Fault::Body(br#"{"error": "Invalid date"}"#.to_vec()), "not a JSON array"),
        (Fault::Body(br#"[{"paper": {"id": 42}}]"#.to_vec()), "not a JSON array"),
        (Fault::Huge(21 * 1024 * 1024), "more than 20 MB"),
        (Fault::Status { code: 500, times: 100, retry_after: None }, "HTTP 500"),
        (Fault::Hang, "did not answer in time"),
    ];
    for (fault, reason) in cases {
        up.set_fault(Some(fault));
        let result = ingest::huggingface(&app.db, &sources, d, Trigger::Cli).await;
        assert_fails_cleanly(&app, result, reason).await;
    }
    let after = app.featured_on("2025-11-06").await;
    let upvotes = |day: &[papers::PaperCard]| -> Vec<(String, i32)> {
        day.iter().map(|p| (p.arxiv_id.clone(), p.upvotes)).collect()
    };
    assert_eq!(upvotes(&after), upvotes(&before), "earlier data intact");
    assert_eq!(papers::estimated_count(&app.db).await.unwrap(), 13);
}

#[tokio::test]
async fn broken_arxiv_feeds_fail_the_run() {
    let (app, up, sources) = setup().await;
    let cases: Vec<(Fault, &str)> = vec![
        (
            Fault::Body(b"<rss version=\"2.0\"><channel><item><title>cut".to_vec()),
            "not an RSS feed",
        ),
        (Fault::Body(b"<!DOCTYPE html><html>maintenance</html>".to_vec()), "HTML page"),
        (Fault::Body(b"{\"not\": \"xml\"}".to_vec()), "not an RSS feed"),
    ];
    for (fault, reason) in cases {
        up.set_fault(Some(fault));
        let result = ingest::arxiv(&app.db, &sources, Trigger::Cli).await;
        assert_fails_cleanly(&app, result, reason).await;
    }
    assert_eq!(papers::estimated_count(&app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn arxiv_requests_are_spaced_three_seconds_apart() {
    let (app, up, sources) = setup().await;
    up.set_arxiv_file("arxiv/rss_2025-11-07.xml");
    ingest::arxiv(&app.db, &sources, Trigger::Cli).await.unwrap();
    ingest::arxiv(&app.db, &sources, Trigger::Cli).await.unwrap();
    let times: Vec<_> = up.requests().into_iter().map(|(t, _)| t).collect();
    assert_eq!(times.len(), 2);
    assert!(times[1] - times[0] >= Duration::from_millis(2990), "{:?}", times[1] - times[0]);
    let announced = app.papers().await;
    assert_eq!(announced.iter().filter(|p| p.announced_on == Some(day("2025-11-07"))).count(), 15);
}
