//! The relevance benchmark: precision@5 and nDCG@10 over a judged set of subscriber profiles
//! (`bench/relevance/judgments.json`, judged by reading every fixture paper's title and
//! abstract), for these rankers:
//!   1. phrase matching (round one: a topic is a literal stemmed phrase);
//!   2. literal matching (IDF weights, loose words, acronyms learned from the papers): what
//!      paperboy ranks with when `PAPERBOY_EMBEDDING_MODEL=off` or the model is not ready;
//!   3. literal matching and meaning (the sentence-embedding model), no ratings;
//!   4. and 5. the literal and the meaning ranker after simulated ratings.
//!
//! Profiles whose topic the test days lack (`ABSENT`) must get nothing: the mean number of
//! papers they are sent is printed for the literal and the meaning ranker.
//!
//! Simulated feedback: on each training day (the first ~55 % of the fixture days) the subscriber
//! gets their digest of 10, rates each paper in it (👍 if it is relevant to their hidden
//! interest, 👎 otherwise), and also 👍 the relevant papers they spot in the day's list
//! (the landing page shows every paper). The taste is retrained after each day. All
//! rankers are then measured on the later days' papers, pooled as one edition.
//!
//!   bash tests/fetch_model.sh .cache/models/all-MiniLM-L6-v2
//!   cargo run --release --example relevance [-- MODEL_FOLDER]
//!   (PAPERBOY_FIXTURES=path/to/fixtures to use other fixtures; the papers' vectors are kept
//!   in target/relevance-vectors.json between runs)

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use paperboy::digests::ranking::{
    Candidate, CandidateSet, Interests, Lexicon, MeaningTaste, Taste, Vectors, topic_key,
};
use paperboy::domain::RatedPaper;
use paperboy::domain::lexicon::{read_paper, stems};
use paperboy::embeddings::{Encoder, paper_text, topics};
use serde::Deserialize;

#[derive(Deserialize)]
struct Judgments {
    train_days: Vec<String>,
    test_days: Vec<String>,
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
    topics: Vec<String>,
    relevant: HashSet<String>,
}

fn day_papers(dir: &str, day: &str) -> Vec<Candidate> {
    let path = format!("{dir}/huggingface/daily_papers/{day}.json");
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("a date");
    let (papers, _) =
        paperboy::papers::sources::huggingface::parse_page(&body, date).expect("a fixture");
    papers.iter().map(Candidate::from).collect()
}

/// Today's (old) ranking: a topic matches only as the literal stemmed phrase; the title
/// counts 3, keywords 2, the abstract 1; upvotes add 0.35·ln(1 + upvotes).
fn phrase_matching(papers: &[Candidate], topics: &[String], limit: usize) -> Vec<String> {
    let contains = |text: &str, phrase: &[String]| {
        let words = stems(text);
        !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase)
    };
    let mut scored: Vec<(f64, i32, &str)> = papers
        .iter()
        .filter_map(|c| {
            let keywords = c.ai_keywords.join(" | ");
            let strength: f64 = topics
                .iter()
                .map(|t| stems(t))
                .filter_map(|phrase| {
                    [(c.title.as_str(), 3.0), (keywords.as_str(), 2.0), (&c.abstract_text, 1.0)]
                        .into_iter()
                        .find(|(text, _)| contains(text, &phrase))
                        .map(|(_, w)| w)
                })
                .sum();
            (strength > 0.0).then(|| {
                let trend = 0.35 * (1.0 + c.upvotes.max(0) as f64).ln();
                (strength + trend, c.upvotes, c.arxiv_id.as_str())
            })
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    scored.into_iter().take(limit).map(|s| s.2.to_string()).collect()
}

fn rank(set: &CandidateSet, interests: &Interests) -> Vec<String> {
    let picks = set.rank(interests, &HashSet::new());
    picks.iter().map(|p| set.candidates()[p.index].arxiv_id.clone()).collect()
}

fn precision_at(k: usize, ranked: &[String], relevant: &HashSet<String>) -> f64 {
    ranked.iter().take(k).filter(|id| relevant.contains(*id)).count() as f64 / k as f64
}

fn ndcg_at(k: usize, ranked: &[String], relevant: &HashSet<String>) -> f64 {
    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, id)| relevant.contains(*id))
        .map(|(i, _)| gain(i))
        .sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

/// Topics no paper of the test days is about: a reader of one must get nothing.
const ABSENT: [&str; 8] = [
    "spiking neural networks",
    "quantum computing",
    "protein structure prediction",
    "weather forecasting",
    "stock market prediction",
    "traffic forecasting",
    "graph neural networks",
    "legal NLP",
];

/// The papers' vectors, computed once and kept in `target/` (keyed by model and text).
fn paper_vectors(
    encoder: &Encoder,
    model: &str,
    papers: &[&Candidate],
) -> HashMap<String, Vec<f32>> {
    let cache = concat!(env!("CARGO_MANIFEST_DIR"), "/target/relevance-vectors.json");
    let mut known: HashMap<String, Vec<f32>> = std::fs::read(cache)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default();
    let key = |c: &Candidate| format!("{model}\u{1f}{}", paper_text(&c.title, &c.abstract_text));
    let missing: Vec<&Candidate> =
        papers.iter().copied().filter(|c| !known.contains_key(&key(c))).collect();
    if !missing.is_empty() {
        eprintln!("embedding {} papers (kept for the next run)…", missing.len());
        let texts: Vec<String> =
            missing.iter().map(|c| paper_text(&c.title, &c.abstract_text)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = encoder.embed(&refs).expect("embedding works");
        for (c, v) in missing.iter().zip(vectors) {
            known.insert(key(c), v);
        }
        let _ = std::fs::write(cache, serde_json::to_vec(&known).expect("json"));
    }
    papers.iter().map(|c| (c.arxiv_id.clone(), known[&key(c)].clone())).collect()
}

fn with_vectors(
    papers: Vec<Candidate>,
    lexicon: &Lexicon,
    model: &str,
    vectors: &HashMap<String, Vec<f32>>,
) -> CandidateSet {
    let rows = papers.iter().map(|c| vectors.get(&c.arxiv_id).cloned()).collect();
    let dim = vectors.values().next().map_or(0, Vec::len);
    CandidateSet::new(papers, lexicon).with_vectors(Vectors::new(model, dim, rows))
}

#[derive(Default)]
struct Totals {
    p5: f64,
    ndcg: f64,
}

fn main() {
    // SAFETY: first thing in main, before any other thread.
    unsafe { paperboy::embeddings::single_threaded_kernels() };
    let root = env!("CARGO_MANIFEST_DIR");
    let dir =
        std::env::var("PAPERBOY_FIXTURES").unwrap_or_else(|_| format!("{root}/tests/fixtures"));
    let model_dir =
        std::env::args().nth(1).unwrap_or_else(|| format!("{root}/.cache/models/all-MiniLM-L6-v2"));
    let encoder = Encoder::load(std::path::Path::new(&model_dir)).expect("the model loads");
    let model = "benchmark-model";
    let judgments: Judgments = serde_json::from_slice(
        &std::fs::read(format!("{root}/bench/relevance/judgments.json"))
            .expect("bench/relevance/judgments.json"),
    )
    .expect("valid judgments");
    let train: Vec<Vec<Candidate>> =
        judgments.train_days.iter().map(|d| day_papers(&dir, d)).collect();
    let test: Vec<Candidate> =
        judgments.test_days.iter().flat_map(|d| day_papers(&dir, d)).collect();
    // The lexicon as the service would have it: every stored paper read once.
    let all: Vec<_> = train
        .iter()
        .flatten()
        .chain(&test)
        .map(|c| read_paper(&c.title, &c.abstract_text, &c.ai_keywords))
        .collect();
    let lexicon = Lexicon::from_papers(&all);
    let vectors =
        paper_vectors(&encoder, model, &train.iter().flatten().chain(&test).collect::<Vec<_>>());
    let literal_test = CandidateSet::new(test.clone(), &lexicon);
    let meaning_test = with_vectors(test.clone(), &lexicon, model, &vectors);
    let literal_train: Vec<CandidateSet> =
        train.iter().map(|day| CandidateSet::new(day.clone(), &lexicon)).collect();
    let meaning_train: Vec<CandidateSet> =
        train.iter().map(|day| with_vectors(day.clone(), &lexicon, model, &vectors)).collect();
    // Topic vectors, as saving preferences computes them.
    let topic_vectors = |topics: &[String]| -> HashMap<String, std::sync::Arc<[f32]>> {
        let texts: Vec<String> = topics.iter().map(|t| topics::text(t, &lexicon)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vs = encoder.embed(&refs).expect("embedding works");
        topics.iter().map(|t| topic_key(t)).zip(vs.into_iter().map(Into::into)).collect()
    };

    let columns = ["phrase", "literal", "meaning", "literal+r", "meaning+r"];
    let mut totals: HashMap<&str, Totals> = HashMap::new();
    println!(
        "{:<40}{}",
        "profile (P@5 / nDCG@10)",
        columns.iter().map(|c| format!("{c:>14}")).collect::<String>()
    );
    for profile in &judgments.profiles {
        let literal = Interests { topics: profile.topics.clone(), ..Default::default() };
        let meaning = literal.clone().with_topic_vectors(&topic_vectors(&profile.topics));
        let mut ranked: HashMap<&str, Vec<String>> = HashMap::new();
        ranked.insert("phrase", phrase_matching(&test, &profile.topics, 10));
        ranked.insert("literal", rank(&literal_test, &literal));
        ranked.insert("meaning", rank(&meaning_test, &meaning));
        // Simulated feedback over the training days, most recent rating first, for the
        // literal ranker and the meaning ranker alike.
        for (name, sets, interests) in
            [("literal+r", &literal_train, &literal), ("meaning+r", &meaning_train, &meaning)]
        {
            let with_meaning = name == "meaning+r";
            let mut rated: Vec<RatedPaper> = Vec::new();
            let mut taste = Taste::default();
            for set in sets {
                let subscriber = Interests { taste: taste.clone(), ..interests.clone() };
                let shown: HashSet<String> = rank(set, &subscriber).into_iter().collect();
                for c in set.candidates() {
                    let relevant = profile.relevant.contains(&c.arxiv_id);
                    if relevant || shown.contains(&c.arxiv_id) {
                        rated.insert(
                            0,
                            RatedPaper {
                                arxiv_id: c.arxiv_id.clone(),
                                title: c.title.clone(),
                                abstract_text: c.abstract_text.clone(),
                                keywords: c.ai_keywords.clone(),
                                up: relevant,
                            },
                        );
                    }
                }
                taste = Taste::train(&rated, &profile.topics, &lexicon);
                if with_meaning {
                    let topics: Vec<&[f32]> =
                        interests.topic_vectors.values().map(|v| &v[..]).collect();
                    taste.meaning = MeaningTaste::from_ratings(model, &rated, &vectors, &topics);
                }
            }
            let test_set = if with_meaning { &meaning_test } else { &literal_test };
            ranked.insert(name, rank(test_set, &Interests { taste, ..interests.clone() }));
        }
        let mut row = format!("{:<40}", profile.name);
        for name in columns {
            let (p, n) = (
                precision_at(5, &ranked[name], &profile.relevant),
                ndcg_at(10, &ranked[name], &profile.relevant),
            );
            let t = totals.entry(name).or_default();
            t.p5 += p;
            t.ndcg += n;
            row.push_str(&format!("{:>8.2} /{:>5.2}", p, n));
        }
        println!("{row}");
    }
    let n = judgments.profiles.len() as f64;
    println!();
    println!("mean over {} profiles ({} test papers):", judgments.profiles.len(), test.len());
    for (name, label) in [
        ("phrase", "phrase matching (round one)"),
        ("literal", "literal, no ratings"),
        ("meaning", "meaning, no ratings"),
        ("literal+r", "literal + ratings"),
        ("meaning+r", "meaning + ratings"),
    ] {
        let t = &totals[name];
        println!("  {label:<30} precision@5 {:.3}   nDCG@10 {:.3}", t.p5 / n, t.ndcg / n);
    }
    // A reader whose topic the days lack.
    let (mut literal_sent, mut meaning_sent) = (0, 0);
    for topic in ABSENT {
        let topics = vec![topic.to_string()];
        let literal = Interests { topics: topics.clone(), ..Default::default() };
        let meaning = literal.clone().with_topic_vectors(&topic_vectors(&topics));
        let (l, m) = (rank(&literal_test, &literal), rank(&meaning_test, &meaning));
        if !m.is_empty() {
            let titles: Vec<&str> = m
                .iter()
                .filter_map(|id| test.iter().find(|c| &c.arxiv_id == id))
                .map(|c| c.title.as_str())
                .collect();
            eprintln!("absent topic {topic:?} got {titles:?}");
        }
        literal_sent += l.len();
        meaning_sent += m.len();
    }
    println!(
        "  absent topics ({}): papers sent per reader: literal {:.2}, meaning {:.2}",
        ABSENT.len(),
        literal_sent as f64 / ABSENT.len() as f64,
        meaning_sent as f64 / ABSENT.len() as f64
    );
}
