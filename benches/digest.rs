//! The pure core: rank and render one digest from 1,000 candidates for a reader with five
//! topics. Target: ≤ 50 µs. Run: `cargo bench --bench digest`.

use std::collections::HashSet;
use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use paperboy::digest::{Candidate, CandidateSet, DigestLinks, Edition, Interests, Lexicon, render};

/// 1,000 candidates from the November 2025 fixture days (repeated with fresh ids).
fn candidates() -> Vec<Candidate> {
    let dir = std::env::var("PAPERBOY_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures").into());
    let mut papers = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/huggingface/daily_papers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let body = std::fs::read(&f).unwrap();
        let (day, _) = paperboy::sources::huggingface::parse_page(
            &body,
            NaiveDate::from_ymd_opt(2025, 11, 1).unwrap(),
        )
        .unwrap();
        papers.extend(day);
    }
    (0..1000)
        .map(|i| {
            let p = &papers[i % papers.len()];
            Candidate {
                arxiv_id: format!("{}-{i}", p.arxiv_id),
                title: p.title.clone(),
                abstract_text: p.abstract_text.clone(),
                authors: p.authors.clone(),
                categories: vec!["cs.LG".into(), "cs.CL".into()],
                ai_keywords: p.ai_keywords.clone(),
                ai_summary: p.ai_summary.clone(),
                upvotes: p.upvotes,
                github_repo: p.github_repo.clone(),
                github_stars: p.github_stars,
                project_page: p.project_page.clone(),
                on_huggingface: true,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let set = CandidateSet::new(candidates(), &Lexicon::default());
    let interests = Interests {
        topics: [
            "diffusion models",
            "reinforcement learning",
            "large language models",
            "video generation",
            "agents",
        ]
        .map(String::from)
        .to_vec(),
        min_upvotes: 0,
        limit: 10,
        ..Default::default()
    };
    let edition = Edition::daily(NaiveDate::from_ymd_opt(2025, 11, 6).unwrap());
    let links = DigestLinks {
        preferences: "https://paperboy.example/preferences/t".into(),
        unsubscribe: "https://paperboy.example/unsubscribe/t".into(),
    };
    let exclude = HashSet::new();
    assert_eq!(set.rank(&interests, &exclude).len(), 10);
    c.bench_function("rank + render 1,000 candidates, 5 topics", |b| {
        b.iter(|| {
            let picks = set.rank(black_box(&interests), &exclude);
            let items = render::items(&set, &picks);
            black_box(render::render(&edition, &items, &links).unwrap())
        })
    });
    c.bench_function("rank only", |b| {
        b.iter(|| black_box(set.rank(black_box(&interests), &exclude)))
    });
    let picks = set.rank(&interests, &exclude);
    c.bench_function("render only", |b| {
        b.iter(|| {
            render::render(&edition, &render::items(&set, black_box(&picks)), &links).unwrap()
        })
    });
    c.bench_function("index 1,000 candidates (once per edition)", |b| {
        b.iter(|| black_box(CandidateSet::new(candidates(), &Lexicon::default())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
