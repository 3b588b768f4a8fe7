//! Embedding throughput: papers per second over the fixture papers' title + abstract (what a
//! paper's vector is computed from), batched as `paperboy` runs it, and the peak RSS.
//!
//!   bash tests/fetch_model.sh .cache/models/all-MiniLM-L6-v2
//!   cargo run --release --example embed_throughput [-- MODEL_FOLDER]
//!   (PAPERBOY_FIXTURES=path/to/fixtures to use other fixtures)

use std::time::Instant;

use chrono::NaiveDate;
use paperboy::embeddings::Encoder;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SAFETY: first thing in main, before any other thread.
    unsafe { paperboy::embeddings::single_threaded_kernels() };
    let root = env!("CARGO_MANIFEST_DIR");
    let model =
        std::env::args().nth(1).unwrap_or_else(|| format!("{root}/.cache/models/all-MiniLM-L6-v2"));
    let fixtures =
        std::env::var("PAPERBOY_FIXTURES").unwrap_or_else(|_| format!("{root}/tests/fixtures"));
    let dir = format!("{fixtures}/huggingface/daily_papers");
    let mut texts = Vec::new();
    let mut days: Vec<_> =
        std::fs::read_dir(&dir).expect(&dir).flatten().map(|e| e.path()).collect();
    days.sort();
    for path in days {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let Ok(day) = NaiveDate::parse_from_str(&stem, "%Y-%m-%d") else { continue };
        let body = std::fs::read(&path).unwrap();
        let (papers, _) =
            paperboy::papers::sources::huggingface::parse_page(&body, day).expect("a fixture");
        texts.extend(papers.into_iter().map(|p| format!("{}. {}", p.title, p.abstract_text)));
    }
    let encoder = Encoder::load(std::path::Path::new(&model)).expect("the model loads");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let vectors = encoder.embed(&refs).expect("embedding works");
    let elapsed = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?");
    println!(
        "{} papers in {elapsed:.1} s: {:.1} papers/s; peak RSS {}",
        vectors.len(),
        vectors.len() as f64 / elapsed,
        peak.trim_start_matches("VmHWM:").trim()
    );
}
