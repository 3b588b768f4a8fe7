//! "Papers like these", as a reader meets them: pasted papers that change the preview at
//! once, papers we do not have fetched from arXiv once and at arXiv's pace, a BibTeX
//! library (and a malformed one), examples named at sign-up, a paper added from its page,
//! and the export and erasure of all of it.

use std::time::Duration;

use crate::helpers::{TestApp, app_with_days, extract_path, section, wait_until};
use crate::upstream::Upstream;

/// The preview section of a preferences page.
const PREVIEW: &str = "id=\"preview\"";

/// The "papers like these" list of a preferences page (its section holds the library too).
fn examples(page: &str) -> &str {
    let list = section(page, "id=\"examples\"");
    &list[..list.find("id=\"library\"").unwrap_or(list.len())]
}

/// The requests arXiv's query API stand-in got.
fn lookups(up: &Upstream) -> Vec<(std::time::Instant, String)> {
    up.requests().into_iter().filter(|(_, path)| path.starts_with("/api/query")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_papers_change_the_preview_at_once_and_each_can_be_removed() {
    let (app, _up) = app_with_days(&["2025-11-06", "2025-11-07"]).await;
    let prefs = app.subscriber("like@example.com", &[]).await;
    let before = app.get_page(&prefs).await;
    assert!(!section(&before, PREVIEW).contains("which you rated up"), "no taste yet");

    // Three papers about video and multimodal models, in the three forms a reader pastes,
    // and one thing that is not a paper.
    let pasted = "2511.03334\nhttps://arxiv.org/abs/2511.03146v1 huggingface.co/papers/2511.02358, attention";
    let res = app.post_form(&format!("{prefs}/examples"), &[("examples", pasted)]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Added 3 papers."), "{}", examples(&page));
    assert!(page.contains("<code>attention</code>: not an arXiv id or link"), "listed back");
    let listed = examples(&page);
    for title in ["UniAVGen", "MME-CC", "Let Multimodal Embedders"] {
        assert!(listed.contains(title), "{title} is listed: {listed}");
    }
    // The preview changed before the reader left the page: a paper is there because it is
    // like one they named.
    assert_ne!(section(&page, PREVIEW), section(&before, PREVIEW));
    assert!(section(&page, PREVIEW).contains("which you rated up"), "{}", section(&page, PREVIEW));
    assert_eq!(
        app.get_page(&prefs).await.matches("which you rated up").count(),
        section(&page, PREVIEW).matches("which you rated up").count(),
        "the page agrees after a reload"
    );

    // Each is a 👍 like any other, removed the same way.
    let export = app.export_of(&prefs).await;
    let ratings = export["ratings"].as_array().unwrap();
    assert_eq!(ratings.len(), 3);
    assert!(ratings.iter().all(|r| r["rating"] == "up" && r["source"] == "example"), "{ratings:?}");
    let remove = extract_path(listed, "/rate/").expect("a remove form");
    assert!(remove.ends_with("/clear"), "{remove}");
    let token = prefs.trim_start_matches("/preferences/");
    let res = app.post_form(&remove, &[("back", token)]).await;
    assert_eq!(res.status(), 303);
    let page = app.get_page(&prefs).await;
    assert_eq!(app.export_of(&prefs).await["ratings"].as_array().unwrap().len(), 2);
    assert_eq!(examples(&page).matches(">Remove</button>").count(), 2, "{}", examples(&page));

    // Too many at once: nothing is added, and the reader is told why.
    let many: Vec<String> = (0..51).map(|i| format!("2511.{:05}", 10_000 + i)).collect();
    let res = app.post_form(&format!("{prefs}/examples"), &[("examples", &many.join(" "))]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("at most 50 papers"));
    assert_eq!(app.export_of(&prefs).await["ratings"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn papers_we_do_not_have_are_fetched_from_arxiv_once_and_at_its_pace() {
    // Only 2025-11-06 is stored: the papers below are 2025-11-07's.
    let (app, up) = app_with_days(&["2025-11-06"]).await;
    let ann = app.subscriber("ann@example.com", &[]).await;
    let bob = app.subscriber("bob@example.com", &[]).await;

    let res =
        app.post_form(&format!("{ann}/examples"), &[("examples", "2511.04570 2511.04460")]).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("2 more are being fetched from arXiv"), "{}", examples(&page));
    // (They may have arrived already: the stand-in answers at once.)
    wait_until("arXiv was asked", Duration::from_secs(30), || async { !lookups(&up).is_empty() })
        .await;

    // A second reader asks for others while the first request's gap runs, one of them a
    // paper arXiv does not have.
    let res = app
        .post_form(&format!("{bob}/examples"), &[("examples", "2511.03773 2511.04670 2511.99999")])
        .await;
    assert!(res.text().await.unwrap().contains("3 more are being fetched from arXiv"));
    wait_until("both readers' papers arrived", Duration::from_secs(60), || async {
        let (a, b) = (app.get_page(&ann).await, app.get_page(&bob).await);
        examples(&a).contains("Thinking with Video")
            && examples(&a).contains("V-Thinker")
            && examples(&b).contains("Scaling Agent Learning")
            && examples(&b).contains("arXiv has no such paper")
    })
    .await;
    let asked = lookups(&up);
    assert_eq!(asked.len(), 2, "one request per batch: {asked:?}");
    assert!(asked[0].1.contains("2511.04570") && asked[0].1.contains("2511.04460"));
    let gap = asked[1].0 - asked[0].0;
    assert!(gap >= Duration::from_millis(2900), "arXiv's 3 s between requests: {gap:?}");

    // The fetched papers are stored like any other and count as 👍.
    assert_eq!(app.get("/papers/2511.04570").await.status(), 200);
    let export = app.export_of(&bob).await;
    let rated: Vec<&str> = export["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["arxiv_id"].as_str().unwrap())
        .collect();
    assert_eq!(rated.len(), 2, "{rated:?}");
    let waiting = &export["examples"]["waiting"];
    assert_eq!(waiting[0]["arxiv_id"], "2511.99999");
    assert_eq!(waiting[0]["state"], "missing");

    // Asked again, nothing is fetched: one paper is stored now, arXiv said the other
    // does not exist.
    let cat = app.subscriber("cat@example.com", &[]).await;
    let res =
        app.post_form(&format!("{cat}/examples"), &[("examples", "2511.04570 2511.99999")]).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("Added 1 paper."), "{}", examples(&page));
    assert!(page.contains("<code>2511.99999</code>: arXiv has no such paper"));
    // What would have been a request falls due at once; give it a moment to (not) happen.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lookups(&up).len(), 2, "no request for papers asked before");

    // Forgetting the missing one takes it off the list.
    let forget = format!("{bob}/examples/forget");
    assert_eq!(app.post_form(&forget, &[("arxiv_id", "2511.99999")]).await.status(), 303);
    assert!(!examples(&app.get_page(&bob).await).contains("2511.99999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_arxiv_fails_the_papers_wait_and_are_fetched_later() {
    let (app, up) = app_with_days(&["2025-11-06"]).await;
    up.set_fault(Some(crate::upstream::Fault::Status { code: 503, times: 1, retry_after: None }));
    let ann = app.subscriber("ann@example.com", &[]).await;
    app.post_form(&format!("{ann}/examples"), &[("examples", "2511.04570")]).await;
    wait_until("arXiv was asked", Duration::from_secs(30), || async { !lookups(&up).is_empty() })
        .await;
    // The paper waits; the reader is told so, not that arXiv lacks it.
    let page = app.get_page(&ann).await;
    assert!(examples(&page).contains("fetching from arXiv"), "{}", examples(&page));
    assert!(!examples(&page).contains("no such paper"));
    let due = paperboy::store::examples::next_lookup_due(&app.db)
        .await
        .unwrap()
        .expect("the paper's lookup waits in the queue");
    assert!(due > chrono::Utc::now() + chrono::Duration::seconds(30), "retried later: {due}");
}

/// A multipart body with one file field, as a browser sends an upload.
fn upload(name: &str, content: &str) -> (String, String) {
    let boundary = "paperboyTestBoundary7MA4YWxk";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"library\"; filename=\"{name}\"\r\n\
         Content-Type: text/x-bibtex\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_library(app: &TestApp, prefs: &str, name: &str, content: &str) -> reqwest::Response {
    let (content_type, body) = upload(name, content);
    app.client
        .post(format!("{}{prefs}/library", app.address))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

const LIBRARY: &str = r#"
@inproceedings{uniavgen,
  title = {{UniAVGen}: Unified Audio and Video Generation},
  eprint = {2511.03334}, archivePrefix = {arXiv},
}
@article{unknown, title = {Attention Is All You Need}, url = {https://arxiv.org/abs/1706.03762}}
@book{video, title = {Video Understanding with Multimodal Language Models},
  abstract = {Models that watch videos and answer questions about what happens in them.}}
@misc{untitled, author = {Somebody}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bibtex_library_counts_and_a_malformed_one_changes_nothing() {
    let (app, up) = app_with_days(&["2025-11-06", "2025-11-07"]).await;
    let prefs = app.subscriber("lib@example.com", &[]).await;

    let res = post_library(&app, &prefs, "My Library.bib", LIBRARY).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Read 4 entries of My Library.bib: 3 used."), "{}", examples(&page));
    assert!(page.contains("2 arXiv papers and 1 other entry used"), "{}", examples(&page));
    assert!(page.contains("<code>untitled</code>: no title and no arXiv id"));
    // The entry with no arXiv id counts by its words before the model reads it.
    assert!(section(&page, PREVIEW).contains("which you rated up"), "{}", section(&page, PREVIEW));
    // The arXiv entry we do not have is looked up (arXiv's stand-in lacks it).
    wait_until("arXiv answered", Duration::from_secs(30), || async {
        examples(&app.get_page(&prefs).await).contains("arXiv has no such paper")
    })
    .await;
    assert!(lookups(&up)[0].1.contains("1706.03762"));

    // Malformed BibTeX: a clear message, and the library as it was.
    let res = post_library(&app, &prefs, "broken.bib", "@article{a, title = {unclosed\n").await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("not valid BibTeX"), "{}", examples(&page));
    assert!(page.contains("My Library.bib"), "the earlier library stays");
    let export = app.export_of(&prefs).await;
    let library = &export["examples"]["library"];
    assert_eq!(library["file_name"], "My Library.bib");
    assert_eq!(
        library["liked_entries"][0]["title"],
        "Video Understanding with Multimodal Language Models"
    );
    let ratings = export["ratings"].as_array().unwrap();
    assert_eq!(ratings.len(), 1);
    assert_eq!(
        (ratings[0]["arxiv_id"].as_str(), ratings[0]["source"].as_str()),
        (Some("2511.03334"), Some("library"))
    );

    // Removing the library takes what it added, and the preview is as before.
    let res = app.post_form(&format!("{prefs}/library/remove"), &[]).await;
    assert_eq!(res.status(), 303);
    let page = app.get_page(&prefs).await;
    assert!(!page.contains("My Library.bib"));
    assert!(!section(&page, PREVIEW).contains("which you rated up"));
    let export = app.export_of(&prefs).await;
    assert!(export["ratings"].as_array().unwrap().is_empty());
    assert!(export["examples"]["library"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_reader_removes_their_examples_and_library() {
    let (app, _up) = app_with_days(&["2025-11-06"]).await;
    let prefs = app.subscriber("gone@example.com", &[]).await;
    app.post_form(&format!("{prefs}/examples"), &[("examples", "2511.03334 2511.04570")]).await;
    assert_eq!(post_library(&app, &prefs, "l.bib", LIBRARY).await.status(), 200);
    let id = app.subscriber_id("gone@example.com").await;
    use paperboy::store::{examples, library, ratings};
    assert!(!examples::of_subscriber(&app.db, id, 100).await.unwrap().is_empty());
    assert!(library::summary(&app.db, id).await.unwrap().is_some());
    assert!(paperboy::store::subscribers::erase(&app.db, id).await.unwrap());
    assert_eq!(app.get(&prefs).await.status(), 404);
    // Nothing of theirs is left: ratings, examples (liked and waiting), library, entries.
    assert!(ratings::of_subscriber(&app.db, id, None).await.unwrap().is_empty());
    assert!(examples::of_subscriber(&app.db, id, 100).await.unwrap().is_empty());
    assert!(library::summary(&app.db, id).await.unwrap().is_none());
    assert!(library::entries(&app.db, id, 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn papers_named_at_sign_up_count_once_the_address_is_confirmed() {
    let (app, _up) = app_with_days(&["2025-11-06", "2025-11-07"]).await;
    let email = "signup@example.com";
    let form = [
        ("email", email),
        ("frequency", "daily"),
        ("examples", "2511.03334, https://arxiv.org/abs/2511.03146 not-a-paper"),
    ];
    let res = app.post_form("/subscribe", &form).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("<code>not-a-paper</code>"), "listed back: {page}");
    let prefs = app.confirm_latest(email).await;
    let page = app.get_page(&prefs).await;
    assert!(examples(&page).contains("UniAVGen") && examples(&page).contains("MME-CC"));
    assert!(section(&page, PREVIEW).contains("which you rated up"), "{}", section(&page, PREVIEW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_adds_a_paper_from_its_page_coming_from_their_web_copy() {
    let (app, _up) = app_with_days(&["2025-11-07"]).await;
    let email = "copy@example.com";
    let prefs = app.subscriber(email, &[("topics", "video")]).await;
    app.send_edition("2025-11-07").await;
    let mail = app.digests_to(email).pop().expect("a digest");
    let copy = app.get_page(&mail.web_copy_path()).await;
    let at = copy.find("href=\"/papers/").expect("a link to a paper's page") + "href=\"".len();
    let paper = copy[at..copy[at..].find('"').unwrap() + at].replace("&amp;", "&");
    assert!(paper.contains("?reader="), "{paper}");
    let id = paper.trim_start_matches("/papers/").split('?').next().unwrap().to_string();

    let page = app.get_page(&paper).await;
    assert!(
        page.contains("<meta name=\"robots\" content=\"noindex, nofollow\">"),
        "a page with a token is not indexed"
    );
    let action = extract_path(&page, "/examples/").expect("the add form");
    let res = app.post_form(&action, &[("arxiv_id", &id)]).await;
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&format!("/papers/{id}?reader=")), "{back}");
    assert!(app.get_page(&back).await.contains("Added to your papers like these"));
    let export = app.export_of(&prefs).await;
    assert_eq!(export["ratings"][0]["arxiv_id"], id.as_str());
    assert_eq!(export["ratings"][0]["source"], "example");

    // Without a valid token the page offers nothing and the POST is not found.
    let plain = app.get_page(&format!("/papers/{id}?reader=forged")).await;
    assert!(!plain.contains("/examples/"));
    assert_eq!(app.post_form("/examples/forged", &[("arxiv_id", &id)]).await.status(), 404);
}
