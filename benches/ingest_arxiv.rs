//! Ingests a 2,000-item arXiv feed (generated from the fixtures) into Postgres through the
//! real path: HTTP fetch from a loopback server, RSS parse, one transaction of upserts.
//! Target: ≤ 1 s. Run: `cargo bench --bench ingest_arxiv`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use paperboy::config::Settings;
use paperboy::papers::ingest::{self, Sources, Trigger};
use sqlx::{Connection, PgConnection};

const ITEMS: usize = 2000;
const RUNS: usize = 5;

fn fixture(name: &str) -> String {
    let dir = std::env::var("PAPERBOY_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").into());
    std::fs::read_to_string(format!("{dir}/{name}")).expect("fixture")
}

/// A feed of `n` items: the fixtures' items repeated with fresh ids.
fn big_feed(n: usize) -> String {
    let mut items = Vec::new();
    for file in ["arxiv/rss_2025-11-06.xml", "arxiv/rss_2025-11-07.xml"] {
        let text = fixture(file);
        let mut rest = text.as_str();
        while let Some(start) = rest.find("<item>") {
            let end = rest[start..].find("</item>").expect("closed item") + start + "</item>".len();
            items.push(rest[start..end].to_string());
            rest = &rest[end..];
        }
    }
    let head = fixture("arxiv/rss_2025-11-06.xml");
    let head = &head[..head.find("<item>").unwrap()];
    let mut out = head.to_string();
    for i in 0..n {
        let item = &items[i % items.len()];
        let id_start = item.find("oai:arXiv.org:").unwrap() + "oai:arXiv.org:".len();
        let old_id = &item[id_start..id_start + 10];
        out.push_str(&item.replace(old_id, &format!("2512.{:05}", 10000 + i)));
        out.push('\n');
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

#[tokio::main]
async fn main() {
    let feed = big_feed(ITEMS);
    let parse_started = Instant::now();
    let parsed = paperboy::papers::sources::arxiv::parse_feed(feed.as_bytes()).unwrap();
    let parse_time = parse_started.elapsed();
    assert_eq!(parsed.papers.len(), ITEMS);

    let app = axum::Router::new().route(
        "/rss/{cats}",
        axum::routing::get(move || {
            let feed = feed.clone();
            async move { feed }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/rss", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("paperboy_bench_{}", uuid::Uuid::new_v4().simple());
    let env: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", format!("{server}/{name}")),
        ("PAPERBOY_ARXIV_URL", upstream),
    ]);
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let db = paperboy::startup::database(&settings).await.unwrap();
    let sources = Sources::from_settings(&settings);

    let mut times = Vec::new();
    for run in 0..RUNS {
        sqlx::query("TRUNCATE papers CASCADE").execute(&db).await.unwrap();
        if run > 0 {
            // arXiv's 3 s spacing applies between runs; it is not part of the measurement.
            tokio::time::sleep(paperboy::papers::sources::arxiv::REQUEST_INTERVAL).await;
        }
        let started = Instant::now();
        let summary = ingest::arxiv(&db, &sources, Trigger::Cli).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(summary.counts.inserted as usize, ITEMS);
    }
    db.close().await;
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();

    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("arXiv feed of {ITEMS} items ({} KB)", big_feed(ITEMS).len() / 1024);
    println!("  parse only:                 {:.1} ms", ms(parse_time));
    println!(
        "  fetch + parse + store, median of {RUNS}: {:.1} ms (min {:.1}, max {:.1}); target <= 1000 ms",
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1])
    );
}
