//! The pure core: rank and render one digest from 1,000 candidates for a subscriber with five
//! topics and 50 ratings, literally and by meaning (the candidates', topics' and ratings'
//! sentence vectors from the test model, over the papers' titles to keep the set-up short).
//! Target: ≤ 100 µs. Run: `bash tests/fetch_model.sh .cache/models/all-MiniLM-L6-v2`, then
//! `cargo bench --bench digest`.

use std::collections::HashSet;
use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use paperboy::digests::ranking::{
    Candidate, CandidateSet, Edition, Interests, Lexicon, MeaningTaste, Taste, Vectors, topic_key,
};
use paperboy::digests::{DigestLinks, render};
use paperboy::domain::RatedPaper;
use paperboy::domain::lexicon::read_paper;
use paperboy::embeddings::Encoder;

/// Every paper of the November 2025 fixture days.
fn fixture_papers() -> Vec<Candidate> {
    let dir = std::env::var("PAPERBOY_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").into());
    let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/huggingface/daily_papers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut papers = Vec::new();
    for f in files {
        let body = std::fs::read(&f).unwrap();
        let (day, _) = paperboy::papers::sources::huggingface::parse_page(
            &body,
            NaiveDate::from_ymd_opt(2025, 11, 1).unwrap(),
        )
        .unwrap();
        papers.extend(day.iter().map(Candidate::from));
    }
    papers
}

/// 1,000 candidates from the fixture days (repeated with fresh ids).
fn candidates(papers: &[Candidate]) -> Vec<Candidate> {
    (0..1000)
        .map(|i| {
            let mut c = papers[i % papers.len()].clone();
            c.arxiv_id = format!("{}-{i}", c.arxiv_id);
            c.categories = vec!["cs.LG".into(), "cs.CL".into()];
            c
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let papers = fixture_papers();
    // The lexicon as the service has it once these candidates are stored and read.
    let lexicon = Lexicon::from_papers(
        &candidates(&papers)
            .iter()
            .map(|p| read_paper(&p.title, &p.abstract_text, &p.ai_keywords))
            .collect::<Vec<_>>(),
    );
    let topics: Vec<String> = [
        "diffusion models",
        "reinforcement learning",
        "large language models",
        "video generation",
        "agents",
    ]
    .map(String::from)
    .to_vec();
    // 50 ratings: the subscriber liked every fifth paper and disliked the ones next to it.
    let rated: Vec<RatedPaper> = papers
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 < 2)
        .take(50)
        .map(|(i, p)| RatedPaper {
            arxiv_id: p.arxiv_id.clone(),
            title: p.title.clone(),
            abstract_text: p.abstract_text.clone(),
            keywords: p.ai_keywords.clone(),
            up: i % 5 == 0,
        })
        .collect();
    let taste = Taste::train(&rated, &topics, &lexicon);
    let set = CandidateSet::new(candidates(&papers), &lexicon);
    let interests = Interests { topics, limit: 10, taste, ..Default::default() };

    // By meaning: every candidate, topic and rated paper with a vector.
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/models/all-MiniLM-L6-v2");
    let encoder = Encoder::load(std::path::Path::new(model)).expect("the test model");
    let titles: Vec<&str> = papers.iter().map(|p| p.title.as_str()).collect();
    let by_paper = encoder.embed(&titles).unwrap();
    let rows = (0..1000).map(|i| Some(by_paper[i % papers.len()].clone())).collect();
    let meaning_set = CandidateSet::new(candidates(&papers), &lexicon).with_vectors(Vectors::new(
        "bench",
        encoder.dim(),
        rows,
    ));
    let topic_refs: Vec<&str> = interests.topics.iter().map(String::as_str).collect();
    let topic_vectors: std::collections::HashMap<String, std::sync::Arc<[f32]>> = interests
        .topics
        .iter()
        .map(|t| topic_key(t))
        .zip(encoder.embed(&topic_refs).unwrap().into_iter().map(Into::into))
        .collect();
    let rated_vectors =
        papers.iter().zip(&by_paper).map(|(p, v)| (p.arxiv_id.clone(), v.clone())).collect();
    let mut meaning_taste = interests.taste.clone();
    let topic_refs: Vec<&[f32]> = topic_vectors.values().map(|v| &v[..]).collect();
    meaning_taste.meaning =
        MeaningTaste::from_ratings("bench", &rated, &rated_vectors, &topic_refs);
    let meaning =
        Interests { taste: meaning_taste, ..interests.clone() }.with_topic_vectors(&topic_vectors);
    let edition = Edition::daily(NaiveDate::from_ymd_opt(2025, 11, 6).unwrap());
    let links = DigestLinks {
        preferences: "https://paperboy.example/preferences/t".into(),
        unsubscribe: "https://paperboy.example/unsubscribe/t".into(),
        rate: "https://paperboy.example/rate/t/".into(),
        web: "https://paperboy.example/d/t".into(),
        similar: "https://paperboy.example/papers/".into(),
    };
    let exclude = HashSet::new();
    assert_eq!(set.rank(&interests, &exclude).len(), 10);
    c.bench_function("rank + render 1,000 candidates, 5 topics, 50 ratings", |b| {
        b.iter(|| {
            let picks = set.rank(black_box(&interests), &exclude);
            let items = render::items(&set, &picks);
            black_box(render::render(&edition, &items, &links).unwrap())
        })
    });
    assert_eq!(meaning_set.rank(&meaning, &exclude).len(), 10);
    c.bench_function("rank + render by meaning: 1,000 candidates, 5 topics, 50 ratings", |b| {
        b.iter(|| {
            let picks = meaning_set.rank(black_box(&meaning), &exclude);
            let items = render::items(&meaning_set, &picks);
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
    c.bench_function("train a taste from 50 ratings (once per rating)", |b| {
        b.iter(|| black_box(Taste::train(black_box(&rated), &interests.topics, &lexicon)))
    });
    c.bench_function("index 1,000 candidates (once per edition)", |b| {
        b.iter(|| black_box(CandidateSet::new(candidates(&papers), &lexicon)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
