//! Similar papers and search over a large archive (the benchmark of `bash bench/search_scale.sh`).
//!
//! `cargo run --release --example search_scale -- index [N]`: N synthetic paper vectors
//! (default 1,000,000) in this process, as `serve` holds them: the exact scan's latency,
//! the approximate index's build time, latency and recall@10 against the exact scan, and
//! peak RSS.
//!
//! `… -- seed N MODEL` (with `DATABASE_URL`): the same N vectors stored in Postgres as
//! papers and paper vectors of `MODEL`, for `serve` to load and answer over HTTP.
//!
//! The vectors are unit length around 2,000 subjects, as sentence vectors cluster; each
//! is as close to its subject's centre as real papers are to their neighbours (cosine
//! 0.5–0.7), so the nearest ten are nearly as far as the nearest one: a hard case.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use paperboy::papers::nearest::{Archive, Days, EXPANSION_SEARCH, Near};

const DIM: usize = 384;
const SUBJECTS: usize = 2000;
const QUERIES: usize = 200;

/// A small, seeded generator (reproducible without a crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.next().max(1e-12), self.next());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Vector `i` of the synthetic archive (and queries past its end): deterministic, so that
/// `seed` and `index` see the same archive.
struct Synthetic {
    centres: Vec<Vec<f32>>,
}

impl Synthetic {
    fn new() -> Self {
        let mut rng = Rng(42);
        let centres =
            (0..SUBJECTS).map(|_| unit((0..DIM).map(|_| rng.normal()).collect())).collect();
        Self { centres }
    }

    fn vector(&self, i: usize) -> Vec<f32> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let centre = &self.centres[(rng.next() * SUBJECTS as f64) as usize % SUBJECTS];
        // Noise whose size puts the cosine to the centre in 0.5–0.7.
        let cosine = 0.5 + 0.2 * rng.next() as f32;
        let sigma = ((1.0 / (cosine * cosine) - 1.0) / DIM as f32).sqrt();
        unit(centre.iter().map(|c| c + sigma * rng.normal()).collect())
    }
}

/// A valid arXiv id for paper `i` (100,000 a month from January 2015).
fn arxiv_id(i: usize) -> String {
    let month = i / 100_000;
    format!("{:02}{:02}.{:05}", 15 + month / 12, 1 + month % 12, i % 100_000)
}

fn day(i: usize) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2024, 1, 1).map(|d| d + chrono::Days::new((i % 700) as u64))
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn percentile(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    let at = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
    times[at].as_secs_f64() * 1000.0
}

fn timed(archive: &Archive, queries: &[Vec<f32>]) -> (Vec<Vec<Near>>, f64, f64) {
    let mut times = Vec::new();
    let found = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let found = archive.nearest(q, 10, Days::default(), None);
            times.push(t.elapsed());
            found
        })
        .collect();
    (found, percentile(&mut times, 0.5), percentile(&mut times, 0.95))
}

fn index(n: usize) {
    let synthetic = Synthetic::new();
    let archive = Archive::default();
    let t = Instant::now();
    for i in 0..n {
        archive.insert("synthetic", &arxiv_id(i), day(i), &synthetic.vector(i));
    }
    println!(
        "{n} vectors in memory in {:.1} s; peak RSS {} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|q| synthetic.vector(n + q)).collect();
    let (exact, p50, p95) = timed(&archive, &queries);
    println!("exact scan: p50 {p50:.1} ms, p95 {p95:.1} ms ({QUERIES} queries, k = 10)");
    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    archive.catch_up_index(threads);
    let stats = archive.stats();
    println!(
        "index built in {:.1} s on {threads} threads: {} vectors, {} MiB; peak RSS {} MiB",
        t.elapsed().as_secs_f64(),
        stats.indexed,
        stats.index_bytes >> 20,
        peak_rss_mib()
    );
    for candidates in [128, EXPANSION_SEARCH, 512] {
        archive.set_search_expansion(candidates);
        let (found, p50, p95) = timed(&archive, &queries);
        let hits: usize =
            found.iter().zip(&exact).map(|(f, e)| f.iter().filter(|n| e.contains(n)).count()).sum();
        let recall = hits as f64 / (QUERIES * 10) as f64;
        let used = if candidates == EXPANSION_SEARCH { " (serve's setting)" } else { "" };
        println!(
            "index, {candidates} candidates{used}: p50 {p50:.2} ms, p95 {p95:.2} ms, recall@10 {recall:.3}"
        );
    }
}

async fn seed(n: usize, model: &str) -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let db = sqlx::PgPool::connect(&url).await?;
    let synthetic = Synthetic::new();
    let t = Instant::now();
    for start in (0..n).step_by(2000) {
        let end = (start + 2000).min(n);
        let ids: Vec<String> = (start..end).map(arxiv_id).collect();
        let days: Vec<NaiveDate> = (start..end).filter_map(day).collect();
        sqlx::query(
            "INSERT INTO papers (arxiv_id, title, abstract, featured_on, on_huggingface, lexicon_at)
             SELECT id, 'Synthetic paper ' || id, 'A paper of the synthetic archive.', d, true, now()
             FROM unnest($1::text[], $2::date[]) AS t(id, d)
             ON CONFLICT (arxiv_id) DO NOTHING",
        )
        .bind(&ids)
        .bind(&days)
        .execute(&db)
        .await?;
        let rows: Vec<(String, Vec<f32>)> =
            (start..end).map(|i| (arxiv_id(i), synthetic.vector(i))).collect();
        let mut conn = db.acquire().await?;
        paperboy::store::vectors::save_papers(&mut conn, model, &rows).await?;
        if end % 100_000 == 0 || end == n {
            println!("{end} papers stored ({:.0} s)", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => {
            let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
            let model = args.get(2).cloned().unwrap_or_else(|| "synthetic".into());
            seed(n, &model).await
        }
        Some("index") | None => {
            let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
            tokio::task::spawn_blocking(move || index(n)).await?;
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other}: index [N] | seed N MODEL"),
    }
}
