//! The subscriber's web: every digest online (`/d/{token}`), a private Atom feed, the public
//! archive, the editions on the preferences page and the data export — through HTTP,
//! SMTP and Postgres.

use reqwest::StatusCode;

use crate::helpers::{app_with_papers, extract_path, section, snapshot_settings};

fn unescape(html: &str) -> String {
    html.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The papers of a web copy, in page order.
fn papers_on_page(html: &str) -> Vec<String> {
    html.split("id=\"p-").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_web_copy_shows_the_emails_papers_in_order_with_their_why_lines() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app
        .subscriber(
            "web@example.com",
            &[("topics", "video generation\nagents"), ("papers_per_email", "6")],
        )
        .await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("web@example.com")[0];
    let path = digest.web_copy_path();
    assert!(path.starts_with("/d/"), "{path}");
    assert!(digest.html().contains(&format!("{path}\"")), "the HTML part links the web copy too");

    let res = app.get(&path).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
    assert_eq!(res.headers()["x-robots-tag"], "noindex, nofollow");
    assert!(res.headers().contains_key("content-security-policy"));
    let html = res.text().await.unwrap();
    // The page: kept out of indexes, the day's heading, the papers with their why-lines
    // and rating buttons, links to the preferences page.
    let _snapshots = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("web_copy", html);
    // And it is the email's: the same papers in the same order, each with its why-line.
    assert_eq!(papers_on_page(&html), digest.paper_ids(), "same papers, same order");
    let text = unescape(&html);
    let whys = digest.why_lines();
    assert_eq!(whys.len(), digest.paper_ids().len());
    for why in &whys {
        assert!(text.contains(&format!("Why: {why}")), "{why}");
    }

    // Rating from the web copy: the buttons post to the subscriber's rating links.
    let first = &digest.paper_ids()[0];
    let up = html
        .split("action=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|a| a.ends_with(&format!("/{first}/up")))
        .expect("a 👍 button")
        .to_string();
    assert!(up.starts_with("/rate/"));
    assert_eq!(app.post_form(&up, &[]).await.status(), StatusCode::OK);
    let html = app.get_page(&path).await;
    let rated = html.split("id=\"p-").find(|p| p.starts_with(first.as_str())).unwrap();
    assert!(rated.contains("You rated 👍"), "the rated paper says so: {rated}");

    // The preferences page lists the edition with its web copy.
    let page = app.get_page(&prefs).await;
    let listed = section(&page, "id=\"feed\"")
        .lines()
        .find(|l| l.contains(&format!("<li><a href=\"{path}\">")))
        .expect("the history links the web copy");
    assert!(listed.contains(&format!(" · {} papers · emailed ", whys.len())), "{listed}");

    // It is their mail: still there after unsubscribing.
    assert_eq!(app.unsubscribe(&prefs).await.status(), StatusCode::OK);
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn web_copy_and_feed_links_are_purpose_bound() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("bound@example.com", &[("papers_per_email", "3")]).await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("bound@example.com")[0];
    let copy = digest.web_copy_path();
    let copy_token = copy.trim_start_matches("/d/");
    let manage_token = prefs.trim_start_matches("/preferences/");
    let feed = app.feed_path(&prefs).await;
    let feed_token = feed.trim_start_matches("/feed/");
    let rate_token = extract_path(&digest.text(), "/rate/").unwrap();
    let rate_token = rate_token.split('/').nth(2).unwrap();

    let mut tampered = copy_token.to_string().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/d/{manage_token}"),
        format!("/d/{feed_token}"),
        format!("/d/{rate_token}"),
        format!("/d/{tampered}"),
        "/d/short".to_string(),
        format!("/feed/{manage_token}"),
        format!("/feed/{copy_token}"),
        format!("/preferences/{copy_token}"),
        format!("/preferences/{feed_token}"),
        format!("/unsubscribe/{feed_token}"),
    ] {
        assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.get(&copy).await.status(), StatusCode::OK);
    assert_eq!(app.get(&feed).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_private_feed_is_valid_atom_answers_304_and_can_be_reset() {
    let (app, up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("feed@example.com", &[("papers_per_email", "4")]).await;
    let feed = app.feed_path(&prefs).await;

    // No digest yet: a valid, empty feed.
    let res = app.get(&feed).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.bytes().await.unwrap();
    assert!(feed_rs::parser::parse(&body[..]).unwrap().entries.is_empty());

    app.send_edition("2025-11-06").await;
    app.send_edition("2025-11-07").await;
    let digests = app.digests_to("feed@example.com");
    assert_eq!(digests.len(), 2);
    let res = app.get(&feed).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/atom+xml; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
    assert_eq!(res.headers()["x-robots-tag"], "noindex, nofollow");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let modified = res.headers()["last-modified"].to_str().unwrap().to_string();
    let body = res.text().await.unwrap();
    assert!(body.starts_with("<?xml") && body.contains("xmlns=\"http://www.w3.org/2005/Atom\""));
    let parsed = feed_rs::parser::parse(body.as_bytes()).expect("a valid Atom feed");
    assert_eq!(parsed.feed_type, feed_rs::model::FeedType::Atom);
    assert!(parsed.updated.is_some() && !parsed.id.is_empty() && !parsed.authors.is_empty());
    assert!(parsed.links.iter().any(|l| l.rel.as_deref() == Some("self")));

    // One entry per paper sent, the newest digest first, each with its why-line.
    let newest = digests[1].paper_ids();
    let oldest = digests[0].paper_ids();
    assert_eq!(parsed.entries.len(), newest.len() + oldest.len());
    let linked: Vec<String> = parsed
        .entries
        .iter()
        .map(|e| e.links[0].href.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(linked, [newest.clone(), oldest].concat());
    let whys = digests[1].why_lines();
    for (entry, why) in parsed.entries.iter().zip(&whys) {
        assert!(!entry.id.is_empty() && entry.updated.is_some());
        assert_eq!(entry.summary.as_ref().unwrap().content, format!("Why: {why}"));
        let title = &entry.title.as_ref().unwrap().content;
        assert!(digests[1].text().contains(title.as_str()), "{title}");
        let html = &entry.content.as_ref().unwrap().body.as_ref().unwrap();
        assert!(html.contains("Why:") && html.contains("in your digest of"));
        assert!(!html.contains("/d/"), "no web copy (with its rating forms) from a feed");
    }
    let ids: std::collections::HashSet<_> = parsed.entries.iter().map(|e| &e.id).collect();
    assert_eq!(ids.len(), parsed.entries.len(), "entry ids are unique");

    // A title with markup and a control character (a `\b` in upstream JSON) stays one
    // valid feed, the text intact.
    let mut items = crate::upstream::hf_day("2025-11-07");
    for item in items.as_array_mut().unwrap() {
        if item["paper"]["id"] == newest[0].as_str() {
            let title = format!("{} <b>&amp;\u{8}", item["paper"]["title"].as_str().unwrap());
            item["paper"]["title"] = title.into();
        }
    }
    up.set_day("2025-11-07", items);
    app.ingest_huggingface(&up, "2025-11-07").await;
    let body = app.get(&feed).await.bytes().await.unwrap();
    let reparsed = feed_rs::parser::parse(&body[..]).expect("still a valid feed");
    let title = &reparsed.entries[0].title.as_ref().unwrap().content;
    assert!(title.ends_with(" <b>&amp;"), "{title}");
    let changed = app.get(&feed).await.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(changed, etag, "new content, new ETag");
    let etag = changed;

    // Conditional GET.
    let client = reqwest::Client::new();
    let again = client.get(app.local(&feed)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let since =
        client.get(app.local(&feed)).header("if-modified-since", &modified).send().await.unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    let stale =
        client.get(app.local(&feed)).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    // Reset: a new address; the old one is gone.
    let res = app.post_form(&format!("{prefs}/feed"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&feed).await.status(), StatusCode::NOT_FOUND);
    let renewed = app.feed_path(&prefs).await;
    assert_ne!(renewed, feed);
    let res = app.get(&renewed).await;
    assert_eq!(res.status(), StatusCode::OK);
    let parsed = feed_rs::parser::parse(&res.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(parsed.entries.len(), linked.len());
}

#[tokio::test]
async fn feed_only_subscribers_get_no_email_but_feed_entries_and_a_web_copy() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app.subscriber("feedonly@example.com", &[("frequency", "feed")]).await;
    let page = app.get_page(&prefs).await;
    assert!(page.contains("value=\"feed\" checked"), "the page shows the choice");
    let summary = app.send_edition("2025-11-06").await;
    assert_eq!((summary.sent, summary.posted), (0, 1));
    assert!(summary.to_string().ends_with("posted to feeds 1"), "{summary}");
    assert!(app.digests_to("feedonly@example.com").is_empty(), "no email");

    let feed = app.feed_path(&prefs).await;
    let body = app.get(&feed).await.bytes().await.unwrap();
    let parsed = feed_rs::parser::parse(&body[..]).unwrap();
    assert_eq!(parsed.entries.len(), 10, "the default ten papers, in the feed");

    let page = app.get_page(&prefs).await;
    let history = section(&page, "id=\"feed\"");
    assert!(history.contains(" · 10 papers · in your feed "), "{history}");
    let copy = extract_path(history, "/d/").expect("the edition's web copy");
    let html = app.get_page(&copy).await;
    assert!(html.contains("Added to your feed"));
    assert_eq!(papers_on_page(&html).len(), 10);

    // Never the same paper twice, in the feed either.
    let summary = app.send_edition("2025-11-07").await;
    assert_eq!(summary.posted, 1);
    let body = app.get(&feed).await.bytes().await.unwrap();
    let entries = feed_rs::parser::parse(&body[..]).unwrap().entries;
    let mut papers: Vec<_> = entries.iter().map(|e| e.links[0].href.clone()).collect();
    papers.sort();
    papers.dedup();
    assert_eq!(papers.len(), entries.len());
}

#[tokio::test]
async fn the_archive_lists_days_and_walks_between_them() {
    let (app, _up) = app_with_papers(&[]).await;
    let landing = app.get_page("/").await;
    assert!(landing.contains("href=\"/days\""), "the landing page links the archive");

    let res = app.get("/days").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    let days = res.text().await.unwrap();
    let (first, second) = (
        days.find("/days/2025-11-07").expect("Nov 7 listed"),
        days.find("/days/2025-11-06").expect("Nov 6 listed"),
    );
    assert!(first < second, "newest first");
    let count = app.featured_on("2025-11-06").await.len();
    assert!(days.contains(&format!("Thursday, November 6, 2025</a> · {count} papers")), "{days}");

    let res = app.get("/days/2025-11-06").await;
    assert_eq!(res.status(), StatusCode::OK);
    let day = res.text().await.unwrap();
    assert!(day.contains("Featured on Thursday, November 6, 2025"));
    assert!(day.contains("href=\"/days/2025-11-07\" rel=\"next\""));
    assert!(!day.contains("rel=\"prev\""));
    assert_eq!(day.matches("class=\"paper\"").count(), count);
    let day = app.get_page("/days/2025-11-07").await;
    assert!(day.contains("href=\"/days/2025-11-06\" rel=\"prev\""));
    assert!(!day.contains("rel=\"next\""));

    for bad in [
        "/days/2025-11-08",
        "/days/2025-13-01",
        "/days/2025-11-6",
        "/days/yesterday",
        "/days/9999-12-31",
        "/days/-5000-01-01",
        "/days/+2025-11-06",
        "/days/02025-11-06",
    ] {
        assert_eq!(app.get(bad).await.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn a_subscriber_downloads_their_data_and_erasing_them_removes_it_everywhere() {
    let (app, _up) = app_with_papers(&[]).await;
    let prefs = app
        .subscriber(
            "mine@example.com",
            &[("topics", "video generation"), ("papers_per_email", "3")],
        )
        .await;
    app.send_edition("2025-11-06").await;
    let digest = &app.digests_to("mine@example.com")[0];
    let papers = digest.paper_ids();
    let rate = extract_path(&digest.text(), "/rate/").unwrap();
    assert_eq!(app.post_form(&rate, &[]).await.status(), StatusCode::OK);
    let copy = digest.web_copy_path();
    let feed = app.feed_path(&prefs).await;

    let page = app.get_page(&prefs).await;
    assert!(page.contains(&format!("href=\"{prefs}/export\" download")));
    let res = app.get(&format!("{prefs}/export")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let data: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(data["email"], "mine@example.com");
    assert_eq!(data["status"], "confirmed");
    assert_eq!(data["preferences"]["topics"], serde_json::json!(["video generation"]));
    assert_eq!(data["preferences"]["papers_per_email"], 3);
    let events: Vec<&str> =
        data["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(events, ["confirmed", "subscribed"], "newest first");
    let deliveries = data["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["edition"], "2025-11-06");
    assert_eq!(deliveries[0]["status"], "sent");
    assert!(deliveries[0]["web_copy"].as_str().unwrap().ends_with(&copy));
    let sent: Vec<&str> = deliveries[0]["papers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["arxiv_id"].as_str().unwrap())
        .collect();
    assert_eq!(sent, papers);
    assert_eq!(deliveries[0]["papers"][0]["why"], digest.why_lines()[0]);
    assert_eq!(data["ratings"][0]["arxiv_id"], rate.split('/').nth(3).unwrap());
    assert_eq!(data["ratings"][0]["rating"], "up");
    assert!(data["feed_url"].as_str().unwrap().ends_with(&feed));
    assert_eq!(data["emails"][0]["kind"], "confirmation", "{}", data["emails"]);
    assert!(!data["learned_interests"].as_array().unwrap().is_empty(), "the taste they taught");
    assert!(data["awaiting_confirmation"].is_null());
    assert_eq!(data["bounces"], serde_json::json!([]));

    // GDPR erase (the admin's delete button): nothing of theirs answers any more.
    let id = app.subscriber_id("mine@example.com").await;
    assert!(paperboy::store::subscribers::erase(&app.db, id).await.unwrap());
    for path in [copy, feed, prefs.clone(), format!("{prefs}/export")] {
        assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(app.deliveries().await.iter().all(|d| d.subscriber_id.is_none()), "kept anonymously");
    // Raw SQL: an erased reader's deliveries belong to nobody, so no interface shows what
    // they still hold.
    let quoting: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE why <> '{}'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(quoting, 0, "the why-lines (which quote their topics) are gone");
}

#[tokio::test]
async fn robots_and_icons_keep_token_pages_out_of_indexes() {
    let app = crate::helpers::spawn_app().await;
    let res = app.get("/robots.txt").await;
    assert_eq!(res.status(), StatusCode::OK);
    let robots = res.text().await.unwrap();
    for private in
        ["/d/", "/feed/", "/preferences/", "/unsubscribe/", "/confirm/", "/rate/", "/admin"]
    {
        assert!(robots.contains(&format!("Disallow: {private}")), "{private}");
    }
    let icon = app.get("/favicon.ico").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let landing = app.get_page("/").await;
    assert!(landing.contains("<meta name=\"description\" content=\"paperboy emails you"));
    assert!(!landing.contains("noindex"), "the public pages may be indexed");
}
