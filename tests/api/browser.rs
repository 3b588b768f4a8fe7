//! Both journeys in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! A subscriber subscribes, confirms from the emailed link, tunes topics and sees the preview
//! change, receives a digest and unsubscribes from it; an operator signs in, sees the
//! charts, finds that subscriber and retries a failed delivery. Screenshots of the main pages
//! go to `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use paperboy::store::deliveries::DeliveryStatus;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_ENV, ADMIN_PASSWORD, spawn_app_with, wait_for, wait_until,
};
use crate::smtp::Mode;
use crate::upstream::Upstream;

struct Browser {
    client: Client,
    driver: Child,
    _profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Browser {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
    )
    .arg(format!("--port={port}"))
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run installs it)");
    let profile =
        std::env::temp_dir().join(format!("paperboy-chromium-{}", uuid::Uuid::new_v4().simple()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen, and Chromium to start.
    let client = wait_for("a browser session", Duration::from_secs(20), || async {
        ClientBuilder::native().capabilities(caps.clone()).connect(&url).await
    })
    .await;
    Browser { client, driver, _profile: profile }
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The visible text of the page (retried while a navigation replaces the document).
async fn text(c: &Client) -> String {
    wait_for("the page has a readable body", Duration::from_secs(5), || async {
        c.find(Locator::Css("body")).await?.text().await
    })
    .await
}

/// The page's text once it contains `needle` (pages load after a click asynchronously).
async fn wait_text(c: &Client, needle: &str) -> String {
    wait_for(&format!("the page shows {needle:?}"), Duration::from_secs(15), || async {
        let t = text(c).await;
        if t.contains(needle) { Ok(t) } else { Err(t) }
    })
    .await
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_and_an_operator_do_what_the_product_promises() {
    let up = Upstream::start().await;
    let app = spawn_app_with(&ADMIN_ENV).await;
    app.seed_papers(&up).await;
    let b = browser().await;
    let c = &b.client;

    // The subscriber subscribes on the landing page.
    c.goto(&format!("{}/", app.address)).await.unwrap();
    assert!(text(c).await.contains("Featured on Friday, November 7, 2025"));
    shot(c, "landing").await;
    fill(c, "#email", "subscriber@example.com").await;
    fill(c, "#topics", "agents").await;
    click(c, "input[name=categories][value='cs.LG']").await;
    click(c, "#subscribe button[type=submit]").await;
    wait_text(c, "Check your inbox").await;

    // Follows the emailed link and confirms.
    let mail = app.smtp.wait_for_mail_to("subscriber@example.com", 1).await;
    c.goto(&app.local(&mail.link("/confirm/").unwrap())).await.unwrap();
    click(c, "form button[type=submit]").await;
    wait_text(c, "You're subscribed").await;
    click(c, "a.button").await;

    // Changes topics and sees the preview follow.
    wait_text(c, "Why: matches: agents").await;
    fill(c, "#topics", "video generation").await;
    click(c, "form.form button[type=submit]").await;
    let prefs = wait_text(c, "Saved").await;
    assert!(prefs.contains("Why: matches: video generation"), "{prefs}");
    assert!(!prefs.contains("Why: matches: agents"));
    c.execute("document.getElementById('preview').scrollIntoView()", vec![]).await.unwrap();
    shot(c, "preferences").await;

    // Receives a digest after a send, and reads it.
    app.send_edition("2025-11-07").await;
    let digest = app.smtp.wait_for_mail_to("subscriber@example.com", 2).await;
    assert_eq!(digest.header("x-paperboy-edition").as_deref(), Some("2025-11-07"));
    let html_file = shots_dir().join("digest.html");
    std::fs::write(&html_file, digest.html()).unwrap();
    c.goto(&format!("file://{}", html_file.display())).await.unwrap();
    wait_text(c, "Thinking with Video").await;
    shot(c, "digest-email").await;

    // Opens the digest's web copy, and rates a paper there.
    c.goto(&app.local(&digest.link("/d/").unwrap())).await.unwrap();
    let copy = wait_text(c, "Your papers for Friday, November 7, 2025").await;
    assert!(copy.contains("Why: matches: video generation"), "{copy}");
    shot(c, "web-copy").await;
    click(c, "li.paper form button[type=submit]").await;
    wait_text(c, "Noted: more like this").await;

    // Walks the public archive from the landing page.
    c.goto(&format!("{}/", app.address)).await.unwrap();
    click(c, "a[href='/days']").await;
    wait_text(c, "2 days of Hugging Face Daily Papers").await;
    click(c, "a[href='/days/2025-11-06']").await;
    wait_text(c, "Featured on Thursday, November 6, 2025").await;
    click(c, "a[rel=next]").await;
    wait_text(c, "Featured on Friday, November 7, 2025").await;
    shot(c, "archive-day").await;

    // Unsubscribes from the digest's link.
    let unsubscribe = digest.link("/unsubscribe/").unwrap();
    c.goto(&app.local(&unsubscribe)).await.unwrap();
    click(c, "form button[type=submit]").await;
    wait_text(c, "You're unsubscribed").await;
    assert_eq!(app.status_of("subscriber@example.com").await.as_deref(), Some("unsubscribed"));

    // A second subscriber's digest fails at the SMTP server, for the operator to retry.
    app.subscriber("bounced@example.com", &[]).await;
    app.smtp.set_mode(Mode::RejectPermanent);
    app.send_edition("2025-11-07").await;
    wait_until("a failed delivery", Duration::from_secs(20), || async {
        app.deliveries().await.iter().any(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    app.smtp.set_mode(Mode::Accept);

    // The operator signs in and sees the charts.
    c.goto(&format!("{}/admin", app.address)).await.unwrap();
    fill(c, "#email", ADMIN_EMAIL).await;
    fill(c, "#password", ADMIN_PASSWORD).await;
    click(c, "form.form button[type=submit]").await;
    wait_text(c, "confirmed subscribers").await;
    assert_eq!(
        c.find_all(Locator::Css("figure.chart svg polyline")).await.unwrap().len(),
        10,
        "four charts, their lines"
    );
    shot(c, "admin-overview").await;

    // Finds the subscriber.
    c.goto(&format!("{}/admin/subscribers", app.address)).await.unwrap();
    fill(c, "#q", "subscriber@").await;
    click(c, "form.filters button[type=submit]").await;
    wait_text(c, "Export CSV").await;
    click(c, "table.data a").await;
    let detail = wait_text(c, "Erase (GDPR)").await;
    assert!(
        detail.contains("subscriber@example.com")
            && detail.contains("unsubscribed")
            && detail.contains("2025-11-07")
    );
    shot(c, "admin-subscriber").await;

    // Retries the failed delivery; it goes out.
    c.goto(&format!("{}/admin/deliveries?status=failed", app.address)).await.unwrap();
    wait_text(c, "550").await;
    shot(c, "admin-deliveries").await;
    click(c, "table.data form button[type=submit]").await;
    let mail = app.smtp.wait_for_mail_to("bounced@example.com", 2).await;
    assert_eq!(mail.header("x-paperboy-edition").as_deref(), Some("2025-11-07"));

    b.client.clone().close().await.unwrap();
}
