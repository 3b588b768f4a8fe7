//! The relevance benchmark: precision@5 and nDCG@10 over a judged set of subscriber profiles
//! (`bench/relevance/judgments.json`, judged by reading every fixture paper's title and
//! abstract), for three rankers:
//!   1. today's phrase matching (before this change: a topic is a literal stemmed phrase);
//!   2. the new matching (IDF weights, loose words, acronyms learned from the papers);
//!   3. the new matching after simulated ratings;
//!   4. the same ratings without typed topics (and no weight on upvotes).
//!
//! Simulated feedback: on each training day (the first ~55 % of the fixture days) the subscriber
//! gets their digest of 10, rates each paper in it (👍 if it is relevant to their hidden
//! interest, 👎 otherwise), and also 👍 the relevant papers they spot in the day's list
//! (the landing page shows every paper). The taste is retrained after each day. All
//! rankers are then measured on the later days' papers, pooled as one edition.
//!
//!   cargo run --release --example relevance
//!   (PAPERBOY_FIXTURES=path/to/fixtures to use other fixtures)

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use paperboy::digest::lexicon::{read_paper, stems};
use paperboy::digest::taste::RatedPaper;
use paperboy::digest::{Candidate, CandidateSet, Interests, Lexicon, Taste};
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
    let (papers, _) = paperboy::sources::huggingface::parse_page(&body, date).expect("a fixture");
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

fn main() {
    let dir = std::env::var("PAPERBOY_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures").into());
    let judgments: Judgments = serde_json::from_slice(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/relevance/judgments.json"))
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
    let test_set = CandidateSet::new(test.clone(), &lexicon);
    let train_sets: Vec<CandidateSet> =
        train.iter().map(|day| CandidateSet::new(day.clone(), &lexicon)).collect();

    let mut totals: HashMap<&str, (f64, f64)> = HashMap::new();
    println!(
        "{:<42} {:>17} {:>17} {:>17} {:>7}",
        "profile (P@5 / nDCG@10)", "phrase (today)", "new, no ratings", "new + ratings", "ratings"
    );
    for profile in &judgments.profiles {
        let interests = Interests { topics: profile.topics.clone(), ..Default::default() };
        let old = phrase_matching(&test, &profile.topics, 10);
        let new = rank(&test_set, &interests);

        // Simulated feedback over the training days, most recent rating first.
        let mut rated: Vec<RatedPaper> = Vec::new();
        let mut taste = Taste::default();
        for set in &train_sets {
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
        }
        let learned = rank(&test_set, &Interests { taste: taste.clone(), ..interests.clone() });
        let only = rank(&test_set, &Interests { taste, trend: 0.0, ..Default::default() });

        let mut row = format!("{:<42}", profile.name);
        for (name, ranked) in
            [("phrase", &old), ("new", &new), ("rated", &learned), ("only", &only)]
        {
            let (p, n) = (
                precision_at(5, ranked, &profile.relevant),
                ndcg_at(10, ranked, &profile.relevant),
            );
            let t = totals.entry(name).or_default();
            t.0 += p;
            t.1 += n;
            row.push_str(&format!(" {:>8.2} / {:>5.2}", p, n));
        }
        row.push_str(&format!(" {:>7}", rated.len()));
        println!("{row}");
    }
    let n = judgments.profiles.len() as f64;
    println!();
    println!("mean over {} profiles ({} test papers):", judgments.profiles.len(), test.len());
    for (name, label) in [
        ("phrase", "today's phrase matching"),
        ("new", "new matching, no ratings"),
        ("rated", "new matching + ratings"),
        ("only", "ratings alone (no topics)"),
    ] {
        let (p, nd) = totals[name];
        println!("  {label:<28} precision@5 {:.3}   nDCG@10 {:.3}", p / n, nd / n);
    }
}
