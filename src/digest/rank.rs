//! Ranking: which of an edition's papers a reader gets, in what order, and why.
//! Pure and allocation-light: the edition's papers are indexed once, then each reader
//! is ranked against the index.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

/// A paper that may go into an edition, with what the email shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub arxiv_id: String,
    pub title: String,
    pub abstract_text: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub ai_keywords: Vec<String>,
    pub ai_summary: Option<String>,
    pub upvotes: i32,
    pub github_repo: Option<String>,
    pub github_stars: Option<i32>,
    pub project_page: Option<String>,
    pub on_huggingface: bool,
}

/// Where a topic matched; earlier is stronger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Title = 0,
    Keywords = 1,
    Abstract = 2,
}

impl Field {
    const ALL: [Field; 3] = [Field::Title, Field::Keywords, Field::Abstract];

    fn weight(self) -> f64 {
        match self {
            Field::Title => 3.0,
            Field::Keywords => 2.0,
            Field::Abstract => 1.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Keywords => "keywords",
            Field::Abstract => "abstract",
        }
    }
}

/// Why a paper is in a reader's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Topic {
        topic: String,
        field: Field,
    },
    Category(String),
    Author(String),
    /// A reader without interests gets what is most upvoted.
    Trending,
}

impl Reason {
    pub fn describe(&self, upvotes: i32) -> String {
        match self {
            Reason::Topic { topic, field } => format!("'{topic}' in the {}", field.name()),
            Reason::Category(c) => format!("category {c}"),
            Reason::Author(a) => format!("by {a}"),
            Reason::Trending => format!("trending with {upvotes} upvotes"),
        }
    }
}

/// What a reader asked for, as ranking needs it.
#[derive(Clone, Debug, Default)]
pub struct Interests {
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub min_upvotes: i32,
    pub limit: usize,
}

impl Interests {
    fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.categories.is_empty() && self.authors.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    /// Index into the candidate set.
    pub index: usize,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// Lower-cased words, split on anything that is not a letter or digit.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// An edition's candidates with a positional index of stemmed words per field.
pub struct CandidateSet {
    candidates: Vec<Candidate>,
    stemmer: Stemmer,
    vocabulary: HashMap<String, u32>,
    /// Stemmed word ids per candidate and field.
    fields: Vec<[Vec<u32>; 3]>,
    /// word id → (candidate, field, position)
    postings: HashMap<u32, Vec<(u32, Field, u32)>>,
    authors_lower: Vec<Vec<String>>,
}

impl CandidateSet {
    pub fn new(candidates: Vec<Candidate>) -> Self {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut vocabulary = HashMap::new();
        let mut postings: HashMap<u32, Vec<(u32, Field, u32)>> = HashMap::new();
        let mut fields = Vec::with_capacity(candidates.len());
        for (ci, c) in candidates.iter().enumerate() {
            let keywords = c.ai_keywords.join(" | ");
            let texts = [c.title.as_str(), keywords.as_str(), c.abstract_text.as_str()];
            let mut ids: [Vec<u32>; 3] = Default::default();
            for (field, text) in Field::ALL.into_iter().zip(texts) {
                for (pos, w) in words(text).enumerate() {
                    let stem = stemmer.stem(&w).into_owned();
                    let next = vocabulary.len() as u32;
                    let id = *vocabulary.entry(stem).or_insert(next);
                    ids[field as usize].push(id);
                    postings.entry(id).or_default().push((ci as u32, field, pos as u32));
                }
            }
            fields.push(ids);
        }
        let authors_lower =
            candidates.iter().map(|c| c.authors.iter().map(|a| fold(a)).collect()).collect();
        Self { candidates, stemmer, vocabulary, fields, postings, authors_lower }
    }

    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The phrase as word ids; `None` if some word occurs in no candidate.
    fn phrase(&self, topic: &str) -> Option<Vec<u32>> {
        let ids: Option<Vec<u32>> = words(topic)
            .map(|w| self.vocabulary.get(self.stemmer.stem(&w).as_ref()).copied())
            .collect();
        ids.filter(|v| !v.is_empty())
    }

    /// Marks in `best` the strongest field of each candidate where the phrase occurs,
    /// listing the candidates touched. The rarest word of the phrase drives the scan.
    fn phrase_hits(&self, phrase: &[u32], best: &mut [u8], touched: &mut Vec<u32>) {
        touched.clear();
        let Some((anchor, postings)) = phrase
            .iter()
            .enumerate()
            .filter_map(|(i, w)| self.postings.get(w).map(|p| (i, p)))
            .min_by_key(|(_, p)| p.len())
        else {
            return;
        };
        for &(ci, field, pos) in postings {
            let Some(start) = (pos as usize).checked_sub(anchor) else { continue };
            let words = &self.fields[ci as usize][field as usize];
            if words.len() >= start + phrase.len() && words[start..start + phrase.len()] == *phrase
            {
                let slot = &mut best[ci as usize];
                if *slot == NONE {
                    touched.push(ci);
                }
                *slot = (*slot).min(field as u8);
            }
        }
    }

    /// The reader's digest: matching papers not in `exclude`, strongest first, at most
    /// `interests.limit`. A reader with no interests gets the most upvoted papers.
    pub fn rank(&self, interests: &Interests, exclude: &HashSet<&str>) -> Vec<Pick> {
        let eligible = |i: usize| {
            let c = &self.candidates[i];
            c.upvotes >= interests.min_upvotes && !exclude.contains(c.arxiv_id.as_str())
        };
        // (candidate, score) first; reasons only for the papers that make the cut.
        let mut scored: Vec<(usize, f64)> = Vec::new();
        let mut hits: Vec<(u32, Hit)> = Vec::new();
        if interests.is_empty() {
            scored.extend(
                (0..self.len())
                    .filter(|&i| eligible(i))
                    .map(|i| (i, upvote_score(self.candidates[i].upvotes))),
            );
        } else {
            let mut strength = vec![0.0f64; self.len()];
            let mut best = vec![NONE; self.len()];
            let mut touched = Vec::new();
            for (ti, topic) in interests.topics.iter().enumerate() {
                let Some(phrase) = self.phrase(topic) else { continue };
                self.phrase_hits(&phrase, &mut best, &mut touched);
                for &ci in &touched {
                    let field = Field::ALL[best[ci as usize] as usize];
                    best[ci as usize] = NONE;
                    strength[ci as usize] += field.weight();
                    hits.push((ci, Hit::Topic(ti, field)));
                }
            }
            let wanted_authors: Vec<String> = interests.authors.iter().map(|a| fold(a)).collect();
            if !interests.categories.is_empty() || !wanted_authors.is_empty() {
                for (i, c) in self.candidates.iter().enumerate() {
                    for (k, cat) in interests.categories.iter().enumerate() {
                        if c.categories.iter().any(|pc| pc.eq_ignore_ascii_case(cat)) {
                            strength[i] += 1.0;
                            hits.push((i as u32, Hit::Category(k)));
                        }
                    }
                    for (k, folded) in wanted_authors.iter().enumerate() {
                        if self.authors_lower[i].iter().any(|a| a == folded) {
                            strength[i] += 1.5;
                            hits.push((i as u32, Hit::Author(k)));
                        }
                    }
                }
            }
            scored.extend(
                strength
                    .iter()
                    .enumerate()
                    .filter(|&(i, &s)| s > 0.0 && eligible(i))
                    .map(|(i, &s)| (i, s + upvote_score(self.candidates[i].upvotes))),
            );
        }
        let order = |a: &(usize, f64), b: &(usize, f64)| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.candidates[b.0].upvotes.cmp(&self.candidates[a.0].upvotes))
                .then_with(|| self.candidates[a.0].arxiv_id.cmp(&self.candidates[b.0].arxiv_id))
        };
        if interests.limit > 0 && scored.len() > interests.limit {
            scored.select_nth_unstable_by(interests.limit - 1, order);
            scored.truncate(interests.limit);
        }
        scored.sort_by(order);
        scored
            .into_iter()
            .map(|(index, score)| {
                let reasons = if interests.is_empty() {
                    vec![Reason::Trending]
                } else {
                    hits.iter()
                        .filter(|(ci, _)| *ci as usize == index)
                        .map(|(_, hit)| match *hit {
                            Hit::Topic(t, field) => {
                                Reason::Topic { topic: interests.topics[t].clone(), field }
                            }
                            Hit::Category(k) => Reason::Category(interests.categories[k].clone()),
                            Hit::Author(k) => Reason::Author(interests.authors[k].clone()),
                        })
                        .collect()
                };
                Pick { index, score, reasons }
            })
            .collect()
    }
}

const NONE: u8 = u8::MAX;

/// A match, by index into the reader's interests.
#[derive(Clone, Copy)]
enum Hit {
    Topic(usize, Field),
    Category(usize),
    Author(usize),
}

/// Upvotes count, but with diminishing returns: a match beats popularity.
fn upvote_score(upvotes: i32) -> f64 {
    0.35 * (1.0 + upvotes.max(0) as f64).ln()
}

fn fold(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(id: &str, title: &str, abstract_text: &str, upvotes: i32) -> Candidate {
        Candidate {
            arxiv_id: id.into(),
            title: title.into(),
            abstract_text: abstract_text.into(),
            authors: vec!["Ada Lovelace".into(), "Alan Turing".into()],
            categories: vec!["cs.LG".into()],
            ai_keywords: vec![],
            ai_summary: None,
            upvotes,
            github_repo: None,
            github_stars: None,
            project_page: None,
            on_huggingface: true,
        }
    }

    fn interests(topics: &[&str]) -> Interests {
        Interests {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            limit: 10,
            ..Default::default()
        }
    }

    #[test]
    fn topics_match_as_stemmed_phrases_in_any_case() {
        let set = CandidateSet::new(vec![
            paper("1", "A Spiking Neural Network for Vision", "", 1),
            paper("2", "Neural spiking is weird", "nothing about networks", 50),
            paper("3", "Other", "We train SPIKING neural-networks at scale.", 2),
        ]);
        let picks = set.rank(&interests(&["spiking neural networks"]), &HashSet::new());
        let ids: Vec<&str> =
            picks.iter().map(|p| set.candidates()[p.index].arxiv_id.as_str()).collect();
        assert_eq!(ids, ["1", "3"], "a phrase, not loose words");
        assert_eq!(
            picks[0].reasons,
            [Reason::Topic { topic: "spiking neural networks".into(), field: Field::Title }]
        );
        assert_eq!(picks[1].reasons[0].describe(2), "'spiking neural networks' in the abstract");
    }

    #[test]
    fn title_beats_keywords_beats_abstract_and_more_topics_beat_fewer() {
        let mut kw = paper("kw", "Unrelated", "", 0);
        kw.ai_keywords = vec!["diffusion".into()];
        let set = CandidateSet::new(vec![
            paper("abs", "Unrelated", "uses diffusion", 0),
            kw,
            paper("title", "Diffusion everywhere", "", 0),
            paper("both", "Diffusion transformers", "", 0),
        ]);
        let picks = set.rank(&interests(&["diffusion", "transformer"]), &HashSet::new());
        let ids: Vec<&str> =
            picks.iter().map(|p| set.candidates()[p.index].arxiv_id.as_str()).collect();
        assert_eq!(ids, ["both", "title", "kw", "abs"]);
    }

    #[test]
    fn upvotes_order_equal_matches_and_the_minimum_filters() {
        let set = CandidateSet::new(vec![
            paper("low", "RLHF", "", 3),
            paper("high", "RLHF too", "", 300),
        ]);
        let mut i = interests(&["rlhf"]);
        let ids: Vec<_> = set.rank(&i, &HashSet::new()).iter().map(|p| p.index).collect();
        assert_eq!(ids, [1, 0]);
        i.min_upvotes = 10;
        assert_eq!(set.rank(&i, &HashSet::new()).len(), 1);
    }

    #[test]
    fn categories_and_authors_match_too() {
        let mut p = paper("a", "Robots", "", 0);
        p.categories = vec!["cs.RO".into()];
        let set = CandidateSet::new(vec![p, paper("b", "Something", "", 0)]);
        let by_cat = Interests { categories: vec!["cs.RO".into()], limit: 5, ..Default::default() };
        let picks = set.rank(&by_cat, &HashSet::new());
        assert_eq!(picks.len(), 1);
        assert_eq!(picks[0].reasons, [Reason::Category("cs.RO".into())]);
        let by_author =
            Interests { authors: vec!["alan  TURING".into()], limit: 5, ..Default::default() };
        assert_eq!(set.rank(&by_author, &HashSet::new()).len(), 2);
    }

    #[test]
    fn no_interests_means_trending_and_nothing_matching_means_nothing() {
        let set = CandidateSet::new(vec![
            paper("a", "A", "", 5),
            paper("b", "B", "", 9),
            paper("c", "C", "", 1),
        ]);
        let trending = set.rank(&Interests { limit: 2, ..Default::default() }, &HashSet::new());
        assert_eq!(trending.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(trending[0].reasons, [Reason::Trending]);
        assert!(set.rank(&interests(&["quantum chromodynamics"]), &HashSet::new()).is_empty());
    }

    #[test]
    fn excluded_papers_are_never_picked_and_the_cap_holds() {
        let set =
            CandidateSet::new((0..30).map(|i| paper(&i.to_string(), "Agents", "", i)).collect());
        let exclude: HashSet<&str> = ["29", "28"].into_iter().collect();
        let picks = set.rank(
            &Interests { topics: vec!["agent".into()], limit: 5, ..Default::default() },
            &exclude,
        );
        let ids: Vec<&str> =
            picks.iter().map(|p| set.candidates()[p.index].arxiv_id.as_str()).collect();
        assert_eq!(ids, ["27", "26", "25", "24", "23"]);
    }
}
