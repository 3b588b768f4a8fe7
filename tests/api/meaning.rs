//! Ranking by meaning, as subscribers and operators meet it: a topic found by what it means,
//! the "why" that says so, the preview that agrees with the digest, a model downloaded from
//! the hub in the background, and a model that cannot be had, which blocks nothing.

use std::time::Duration;

use paperboy::store::{papers, vectors};

use crate::embeddings::{fake_hub, model_dir};
use crate::helpers::*;
use crate::upstream::Upstream;

/// A Friday (15 papers) whose papers include "Learning Vision-Driven Reactive Soccer Skills for Humanoid
/// Robots" (2511.03996), which never says "football".
pub(crate) const DAY: &str = "2025-11-07";
pub(crate) const SOCCER: &str = "2511.03996";
const TOPIC: &str = "robot football";

pub(crate) fn model() -> String {
    model_dir().display().to_string()
}

/// (papers, papers with a vector of `model`).
async fn embedded(db: &sqlx::PgPool, model: &str) -> (i64, i64) {
    (papers::estimated_count(db).await.unwrap(), vectors::count_papers(db, model).await.unwrap())
}

/// Waits until every paper has a vector of the app's model.
pub(crate) async fn wait_for_vectors(app: &TestApp) {
    let model = app.settings.embeddings.model.id();
    wait_until("every paper has a vector", Duration::from_secs(180), || async {
        let (papers, vectors) = embedded(&app.db, &model).await;
        papers > 0 && papers == vectors
    })
    .await;
}

/// The dashboard's card about ranking by meaning.
const MODEL: &str = "id=\"model\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paraphrased_topic_finds_its_paper_by_meaning_and_the_preview_agrees() {
    let up = Upstream::start().await;
    let model = model();
    let app = spawn_app_for_sends(&with_admin(&[("PAPERBOY_EMBEDDING_MODEL", &model)])).await;
    app.ingest_huggingface(&up, DAY).await;
    // serve's worker embeds what was ingested, in the background.
    wait_for_vectors(&app).await;

    let prefs = app.subscriber("football@example.com", &[("topics", TOPIC)]).await;
    let page = app.get_page(&prefs).await;
    let preview = section(&page, "id=\"preview\"");
    assert!(preview.contains("Reactive Soccer Skills"), "the preview finds it: {preview}");
    assert!(preview.contains("close to your topic “robot football”"), "{preview}");

    let summary = app.send_edition(DAY).await;
    assert_eq!((summary.sent, summary.skipped), (1, 0));
    let mail = &app.digests_to("football@example.com")[0];
    let ids = mail.paper_ids();
    assert_eq!(ids[0], SOCCER, "the paper about robot soccer leads");
    assert!(mail.text().contains("Why: close to your topic “robot football”"), "{}", mail.text());
    assert!(mail.html().contains("close to your topic “robot football”"));
    // Each paper leads to its similar papers on the web, in both parts.
    let similar = format!("{BASE_URL}/papers/{SOCCER}");
    assert!(mail.text().contains(&format!("Similar papers: {similar}")), "{}", mail.text());
    assert!(mail.html().contains(&format!("href=\"{similar}\"")));
    let copy = app.get_page(&mail.web_copy_path()).await;
    // …carrying the reader's token, so they can add the paper to their "papers like these".
    assert!(copy.contains(&format!("href=\"/papers/{SOCCER}?reader=")), "and so does the web copy");
    // (The page's "papers like these" field shows an example id: the preview is what counts.)
    let previewed: Vec<String> =
        ids.iter().filter(|id| preview.contains(id.as_str())).cloned().collect();
    assert_eq!(previewed, ids, "the preview showed the digest's papers");

    // A reader whose topic the day lacks gets nothing rather than near-misses.
    app.subscriber("quantum@example.com", &[("topics", "quantum error correction")]).await;
    assert_eq!(app.send_edition(DAY).await.skipped, 1);

    let admin = app.admin_login().await;
    let dashboard = admin.get_page("/admin").await;
    let card = section(&dashboard, MODEL);
    assert!(card.contains(&format!("<code>{model}</code>")), "the dashboard names the model");
    assert!(card.contains("class=\"model-ready\""), "{card}");
    assert!(card.contains("<td>15 of 15</td>"), "papers with vectors: {card}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_model_off_ranking_is_literal_as_before() {
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&with_admin(&[("PAPERBOY_EMBEDDING_MODEL", "off")])).await;
    app.ingest_huggingface(&up, DAY).await;
    app.subscriber("football@example.com", &[("topics", TOPIC)]).await;
    app.subscriber("video@example.com", &[("topics", "video generation")]).await;
    let summary = app.send_edition(DAY).await;
    assert_eq!((summary.sent, summary.skipped), (1, 1), "no word of the topic, no paper");
    let mail = &app.digests_to("video@example.com")[0];
    assert!(mail.text().contains("Why: matches: video generation"));
    assert!(!mail.text().contains("close to"));
    // Raw SQL: nothing embedded under any model's name, and no interface counts them all.
    let vectors: i64 =
        sqlx::query_scalar("SELECT count(*) FROM paper_vectors").fetch_one(&app.db).await.unwrap();
    assert_eq!(vectors, 0, "nothing embedded");
    let admin = app.admin_login().await;
    let dashboard = admin.get_page("/admin").await;
    assert!(section(&dashboard, MODEL).contains("PAPERBOY_EMBEDDING_MODEL=off"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_model_blocks_nothing_digests_go_out_literally_and_the_dashboard_says_why() {
    let up = Upstream::start().await;
    let broken =
        crate::embeddings::broken_copy(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    let folder = broken.path().display().to_string();
    let app = spawn_app_for_sends(&with_admin(&[("PAPERBOY_EMBEDDING_MODEL", &folder)])).await;
    let admin = app.admin_login().await;
    assert_eq!(app.get("/readyz").await.status(), 200, "readiness does not wait for a model");
    app.ingest_huggingface(&up, DAY).await;
    wait_until("the model is given up", Duration::from_secs(60), || async {
        section(&admin.get_page("/admin").await, MODEL).contains("class=\"model-unavailable\"")
    })
    .await;
    let dashboard = admin.get_page("/admin").await;
    let card = section(&dashboard, MODEL);
    assert!(card.contains("tokenizer.json"), "the file at fault is named: {card}");
    assert!(card.contains("<td>0 of 15</td>"), "{card}");

    app.subscriber("video@example.com", &[("topics", "video generation")]).await;
    let summary = app.send_edition(DAY).await;
    assert_eq!(summary.sent, 1);
    let mail = &app.digests_to("video@example.com")[0];
    assert!(mail.text().contains("Why: matches: video generation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_downloads_the_model_from_the_hub_in_the_background() {
    let hub = fake_hub().await;
    let home = crate::embeddings::tempdir::Dir::new();
    let home_path = home.path().display().to_string();
    let up = Upstream::start().await;
    let app = spawn_app_for_sends(&with_admin(&[
        ("PAPERBOY_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2"),
        ("HF_ENDPOINT", &hub.url),
        ("HF_HOME", &home_path),
    ]))
    .await;
    app.ingest_huggingface(&up, DAY).await;
    wait_for_vectors(&app).await;
    assert!(
        home.path().join("hub/models--sentence-transformers--all-MiniLM-L6-v2").is_dir(),
        "kept in the Hugging Face cache"
    );
    let admin = app.admin_login().await;
    let dashboard = admin.get_page("/admin").await;
    let card = section(&dashboard, MODEL);
    assert!(card.contains("<code>sentence-transformers/all-MiniLM-L6-v2</code>"), "{card}");
    assert!(card.contains("class=\"model-ready\""), "{card}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hub_blocks_nothing() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let home = crate::embeddings::tempdir::Dir::new();
    let home_path = home.path().display().to_string();
    let hub = [
        ("PAPERBOY_EMBEDDING_MODEL", paperboy::embeddings::DEFAULT_MODEL),
        ("HF_ENDPOINT", &endpoint),
        ("HF_HOME", &home_path),
    ];
    let app = spawn_app_with(&with_admin(&hub)).await;
    let admin = app.admin_login().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.subscribe("hub@example.com", "robot football").await.status(), 200);
    wait_until("the download failed once", Duration::from_secs(30), || async {
        let dashboard = admin.get_page("/admin").await;
        let card = section(&dashboard, MODEL);
        card.contains("class=\"model-downloading\"") && card.contains("config.json")
    })
    .await;
    let dashboard = admin.get_page("/admin").await;
    let model = format!("<code>{}</code>", paperboy::embeddings::DEFAULT_MODEL);
    assert!(section(&dashboard, MODEL).contains(&model), "the dashboard names the model");
    app.smtp.wait_for_mail_to("hub@example.com", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_resumes_after_a_kill_does_nothing_twice_and_a_new_model_re_embeds() {
    use crate::binary::{paperboy, scratch_dir};
    let up = Upstream::start().await;
    let db = TestDb::new();
    let dir = scratch_dir();
    let model = model();
    let base = [("DATABASE_URL", db.url.as_str()), ("PAPERBOY_HF_URL", up.url.as_str())];
    for day in ["2025-11-06", DAY] {
        let out = paperboy(&dir, &base)
            .args(["ingest", "--source", "huggingface", "--date", day])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();

    let off = paperboy(&dir, &base).arg("embed").output().unwrap();
    assert!(!off.status.success(), "no model, no embedding");
    assert!(String::from_utf8_lossy(&off.stderr).contains("PAPERBOY_EMBEDDING_MODEL=off"));

    let with_model = [base[0], ("PAPERBOY_EMBEDDING_MODEL", model.as_str())];
    // Killed after its first batch: what was stored stays, nothing else is half-done.
    let mut child = paperboy(&dir, &with_model)
        .arg("embed")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("a first batch is stored", Duration::from_secs(120), || async {
        embedded(&pool, &model).await.1 > 0
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (papers, first) = embedded(&pool, &model).await;
    assert_eq!(papers, 28, "the papers of both days");
    assert!(first < papers, "killed before the end");
    let all: Vec<String> =
        papers::search(&pool, "").await.unwrap().into_iter().map(|p| p.arxiv_id).collect();
    assert_eq!(all.len(), 28);
    let mut conn = pool.acquire().await.unwrap();
    let stored = vectors::embedded_among(&mut conn, &model, None, &all).await.unwrap();
    assert_eq!(stored.len() as i64, first);
    let killed_at = vectors::now(&pool).await.unwrap();

    let out = paperboy(&dir, &with_model).arg("embed").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with(&format!("embed {model}: embedded {} papers in ", papers - first)),
        "{line}"
    );
    assert!(line.trim_end().ends_with("28 papers have vectors"), "{line}");
    let again = vectors::embedded_among(&mut conn, &model, Some(killed_at), &stored).await.unwrap();
    assert!(again.is_empty(), "embedded once, before the kill, not again: {again:?}");
    let again = paperboy(&dir, &with_model).arg("embed").output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(": embedded 0 papers"));

    // Another model (the same files under another name): everything is embedded again and
    // the old model's vectors go.
    let other = dir.join("other-model");
    std::os::unix::fs::symlink(model_dir(), &other).unwrap();
    let other = other.display().to_string();
    let out = paperboy(&dir, &[base[0], ("PAPERBOY_EMBEDDING_MODEL", other.as_str())])
        .arg("embed")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(": embedded 28 papers"));
    assert_eq!(embedded(&pool, &other).await, (28, 28));
    assert_eq!(embedded(&pool, &model).await.1, 0, "the old model's vectors are gone");

    // A broken folder: a reason naming the file, non-zero.
    let broken =
        crate::embeddings::broken_copy(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    let folder = broken.path().display().to_string();
    let out = paperboy(&dir, &[base[0], ("PAPERBOY_EMBEDDING_MODEL", folder.as_str())])
        .arg("embed")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer.json"));
    drop(conn);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_then_send_without_serve_ranks_by_meaning() {
    use crate::binary::{paperboy, scratch_dir};
    let up = Upstream::start().await;
    let db = TestDb::new();
    let dir = scratch_dir();
    let smtp = crate::smtp::SmtpServer::start().await;
    let smtp_url = smtp.url();
    let model = model();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_HF_URL", up.url.as_str()),
        ("PAPERBOY_SMTP_URL", smtp_url.as_str()),
        ("PAPERBOY_EMBEDDING_MODEL", model.as_str()),
    ];
    let out = paperboy(&dir, &env)
        .args(["ingest", "--source", "huggingface", "--date", DAY])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // Raw SQL: a subscriber who confirmed long ago; signing up (the web's way, the only
    // one) would leave a confirmation in the queue and needs `serve`.
    sqlx::query(
        "INSERT INTO subscribers (email, email_key, status, confirmed_at, topics)
         VALUES ('football@example.com', 'football@example.com', 'confirmed', now(), $1)",
    )
    .bind(vec![TOPIC.to_string()])
    .execute(&pool)
    .await
    .unwrap();
    let out = paperboy(&dir, &env).args(["send", "--date", DAY]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 1"));
    let mail = smtp.wait_for_mail_to("football@example.com", 1).await;
    assert!(mail.text().contains("close to your topic “robot football”"), "{}", mail.text());
    assert_eq!(mail.paper_ids()[0], SOCCER);
    pool.close().await;
}
