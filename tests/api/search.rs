//! The archive by meaning, as a visitor meets it: a paper's page with its nearest papers,
//! search that finds a paraphrase, and the bad input a public search box gets.

use std::time::Duration;

use crate::helpers::*;
use crate::meaning::{DAY, SOCCER, model, wait_for_vectors};
use crate::upstream::Upstream;

/// The similarities a page lists, in order.
fn similarities(page: &str) -> Vec<f32> {
    page.match_indices("similarity ")
        .filter_map(|(i, m)| page[i + m.len()..].get(..4)?.parse().ok())
        .collect()
}

/// The app with `DAY`'s papers embedded and in the archive's memory.
async fn app_with_archive(extra: &[(&str, &str)]) -> (TestApp, Upstream) {
    let up = Upstream::start().await;
    let model = model();
    let mut env = vec![("PAPERBOY_EMBEDDING_MODEL", model.as_str())];
    env.extend_from_slice(extra);
    let app = spawn_app_for_sends(&with_admin(&env)).await;
    app.ingest_huggingface(&up, DAY).await;
    wait_for_vectors(&app).await;
    let path = format!("/papers/{SOCCER}");
    wait_until("the archive holds the day's vectors", Duration::from_secs(60), || async {
        similarities(&app.get_page(&path).await).len() == 10
    })
    .await;
    (app, up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_papers_page_lists_its_nearest_papers_and_search_finds_a_paraphrase() {
    let (app, _up) = app_with_archive(&[]).await;

    // The paper's own page: what it is, where to read it, and its ten nearest papers.
    let page = app.get_page(&format!("/papers/{SOCCER}")).await;
    assert!(page.contains("Learning Vision-Driven Reactive Soccer Skills for Humanoid Robots"));
    assert!(page.contains(&format!("https://arxiv.org/abs/{SOCCER}")), "a link to arXiv");
    let stored = paperboy::store::papers::pages(&app.db, &[SOCCER.to_string()]).await.unwrap();
    let opening = &stored[0].abstract_text[..60];
    assert!(page.contains(opening), "the abstract: {opening}");
    let found = similarities(&page);
    assert_eq!(found.len(), 10, "{page}");
    assert!(found.windows(2).all(|w| w[0] >= w[1]), "nearest first: {found:?}");
    assert_eq!(page.matches(&format!("href=\"/papers/{SOCCER}\"")).count(), 0, "not itself");
    // Each with its day (the paper's own day is linked above them: count the list's).
    let similar = section(&page, "<h2>Similar papers</h2>");
    assert_eq!(similar.matches("href=\"/days/2025-11-07\"").count(), 10, "each with its day");

    // The landing page and the archive lead there.
    let home = app.get_page("/").await;
    assert!(home.contains(&format!("href=\"/papers/{SOCCER}\"")));
    let day = app.get_page(&format!("/days/{DAY}")).await;
    assert!(day.contains(&format!("href=\"/papers/{SOCCER}\"")));

    // Search by meaning: "robot football" is not in the paper, which comes first anyway.
    let res = app.get("/search?q=robot+football").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let first = body.find("href=\"/papers/").map(|i| &body[i..i + 30]).unwrap();
    assert!(first.contains(SOCCER), "the soccer paper leads: {first}");
    assert_eq!(similarities(&body).len(), 15, "every paper of the day, ranked");
    // The query's words the paper uses are marked.
    let body = app.get_page("/search?q=humanoid+robots").await;
    assert!(body.contains("<mark>Humanoid</mark> <mark>Robots</mark>"), "{body}");

    // A date range: only papers of those days.
    let none = app.get("/search?q=robot+football&from=2025-11-08&to=2025-11-30").await;
    assert_eq!(none.status(), 200);
    assert!(similarities(&none.text().await.unwrap()).is_empty());
    let within = app.get(&format!("/search?q=robot+football&from={DAY}&to={DAY}")).await;
    assert_eq!(similarities(&within.text().await.unwrap()).len(), 15);

    // One address per paper; unknown and malformed ids are not found.
    let versioned = app.get(&format!("/papers/{SOCCER}v2")).await;
    assert_eq!(versioned.status(), 308);
    let to = versioned.headers()["location"].to_str().unwrap();
    assert_eq!(to, format!("/papers/{SOCCER}"), "redirected to the plain id");
    assert_eq!(app.get("/papers/2511.99999").await.status(), 404);
    assert_eq!(app.get("/papers/not-a-paper").await.status(), 404);
    assert_eq!(app.get("/papers/..%2F..%2Fetc%2Fpasswd").await.status(), 404);

    // The operator sees what this process holds.
    let admin = app.admin_login().await;
    let overview = admin.get_page("/admin").await;
    assert!(overview.contains("search index (this process)</th><td>15 vectors,"), "{overview}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_search_input_gets_a_friendly_answer_and_searching_is_rate_limited() {
    let (app, _up) = app_with_archive(&[("PAPERBOY_SEARCH_RATE", "6")]).await;
    let get = |query: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(format!("{}/search", app.address))
                .query(&query_pairs(&query))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    // An empty query: the form, no results, no error.
    let (status, body) = get(String::new()).await;
    assert_eq!(status, 200);
    assert!(body.contains("What are you looking for?") && similarities(&body).is_empty());
    // Too long.
    let (status, body) = get("q=".to_string() + &"attention ".repeat(200)).await;
    assert_eq!(status, 400);
    assert!(body.contains("too long to search for"), "{body}");
    // Dates the wrong way round, or not dates.
    let (status, body) = get("q=agents&from=2025-11-30&to=2025-11-01".into()).await;
    assert_eq!(status, 400);
    assert!(body.contains("Write dates as 2025-11-26"));
    assert_eq!(get("q=agents&from=yesterday".into()).await.0, 400);
    // Odd Unicode is searched like any text, and echoed escaped.
    let (status, body) = get("q=🤖 ⚽ \u{202e}робот <script>".into()).await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script>") && body.contains("script"), "echoed, escaped");
    assert_eq!(similarities(&body).len(), 15);
    // Six searches a minute from one client (the rejected inputs above cost nothing).
    for _ in 0..5 {
        assert_eq!(get("q=video".into()).await.0, 200);
    }
    assert_eq!(get("q=video".into()).await.0, 429);
}

#[tokio::test]
async fn without_the_model_search_says_when_it_will_work() {
    let app = spawn_app().await;
    let res = app.get("/search?q=agents").await;
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("once the model that reads the papers is ready"));
}

/// `a=b&c=d` as pairs, for reqwest to encode.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace('+', " "))
        })
        .collect()
}
