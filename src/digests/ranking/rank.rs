//! Ranking: which of an edition's papers a subscriber gets, in what order, and why.
//! Pure and allocation-light: the edition's papers are indexed once, then each subscriber
//! is ranked against the index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rust_stemmers::{Algorithm, Stemmer};

use super::meaning::{Query, Vectors, topic_key};
use super::memo::TopicMemo;
use super::taste::Taste;
use crate::domain::lexicon::{Lexicon, MIN_IDF, keyword_features, read_paper, weigh, words};
use crate::domain::{Candidate, normalize_whitespace};

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

/// Why a paper is in a subscriber's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Topic {
        topic: String,
        field: Field,
    },
    /// Close in meaning to a topic, without its words.
    Close(String),
    Category(String),
    Author(String),
    /// Close to a paper the subscriber rated up (its title).
    Liked(String),
    /// A subscriber without interests gets what is most upvoted.
    Trending,
}

impl Reason {
    pub fn describe(&self, upvotes: i32) -> String {
        match self {
            Reason::Topic { topic, .. } => format!("matches: {topic}"),
            Reason::Close(topic) => format!("close to your topic “{topic}”"),
            Reason::Category(c) => format!("category {c}"),
            Reason::Author(a) => format!("by {a}"),
            Reason::Liked(title) => {
                // Long titles are cut at a word: “Spiking Neural Networks for …”.
                let short = if title.chars().count() > 60 {
                    let head: String = title.chars().take(60).collect();
                    let cut = head.rfind(' ').unwrap_or(head.len());
                    format!("{} …", head[..cut].trim_end())
                } else {
                    title.clone()
                };
                format!("like “{short}”, which you rated up")
            }
            Reason::Trending => format!("trending with {upvotes} upvotes"),
        }
    }
}

/// What a subscriber asked for, as ranking needs it.
#[derive(Clone, Debug)]
pub struct Interests {
    pub topics: Vec<String>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub min_upvotes: i32,
    pub limit: usize,
    /// 0–1: how much "what the field is reading" (upvotes) counts against "what matches me".
    pub trend: f64,
    /// What the subscriber's ratings taught.
    pub taste: Taste,
    /// Sentence-embedding vectors of the topics, by `topic_key`, under the edition's model
    /// (none: the topics match by their words alone).
    pub topic_vectors: HashMap<String, Arc<[f32]>>,
}

impl Default for Interests {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            categories: Vec::new(),
            authors: Vec::new(),
            min_upvotes: 0,
            limit: 10,
            trend: f64::from(crate::domain::DEFAULT_TREND_WEIGHT) / 100.0,
            taste: Taste::default(),
            topic_vectors: HashMap::new(),
        }
    }
}

impl Interests {
    /// Interests the subscriber typed or ticked (ratings aside).
    fn typed(&self) -> bool {
        !(self.topics.is_empty() && self.categories.is_empty() && self.authors.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    /// Index into the candidate set.
    pub index: usize,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// A topic's matched weight (sum of the IDF of its words) is divided by this: a specific
/// two-word phrase in an abstract scores about as much as a title match of a common word.
const PHRASE_NORM: f64 = 4.0;
/// Below this much IDF mass a match says nothing (a topic of common words alone).
const MIN_MATCH_MASS: f64 = 1.2;
/// A phrase's words found apart (not as the phrase) in one field count this much less,
/// and only when they carry this share of the phrase's weight.
const LOOSE_FACTOR: f64 = 0.5;
const LOOSE_COVERAGE: f64 = 0.75;
/// Taste similarity (cosine, −1…1) is scaled by this; from `TASTE_MIN` a paper is
/// eligible even when no typed topic matches it, from `TASTE_REASON` the "why" names the
/// liked paper it is closest to. Tuned on `examples/relevance.rs`.
const TASTE_WEIGHT: f64 = 20.0;
const TASTE_MIN: f64 = 0.05;
const TASTE_REASON: f64 = 0.1;
/// Ranking by meaning (cosine of unit sentence vectors, −1…1). A topic lends a candidate
/// `MEANING_WEIGHT` per unit of closeness above `MEANING_FLOOR`; from `MEANING_MIN` a
/// candidate is in the digest without sharing the topic's words, and its "why" says it is
/// close. Below it, a reader whose topic the day lacks gets nothing rather than near-misses.
/// Tuned on `examples/relevance.rs`.
pub const MEANING_FLOOR: f32 = 0.15;
pub const MEANING_WEIGHT: f64 = 10.0;
pub const MEANING_MIN: f32 = 0.4;
/// The taste in the same space: closeness to the centroid of what the subscriber rated up
/// (`MeaningTaste`), weighed and thresholded the same way.
const TASTE_MEANING_FLOOR: f32 = 0.0;
const TASTE_MEANING_WEIGHT: f64 = 12.0;
const TASTE_MEANING_MIN: f32 = 0.45;
const TASTE_MEANING_REASON: f32 = 0.4;

/// An edition's candidates with a positional index of stemmed words per field and each
/// paper's TF-IDF vector (IDF from the lexicon of all stored papers).
pub struct CandidateSet {
    candidates: Vec<Candidate>,
    stemmer: Stemmer,
    vocabulary: HashMap<String, u32>,
    /// Stemmed word ids per candidate and field.
    fields: Vec<[Vec<u32>; 3]>,
    /// word id → (candidate, field, position)
    postings: Vec<Vec<(u32, Field, u32)>>,
    /// word id → IDF
    idf: Vec<f64>,
    /// IDF of a word no stored paper has.
    idf_unseen: f64,
    /// word id → (candidate, TF-IDF weight in its unit vector)
    weights: Vec<Vec<(u32, f32)>>,
    /// candidate → its unit vector, by word id
    vectors: Vec<Vec<(u32, f32)>>,
    /// arXiv id → candidate
    by_id: HashMap<String, u32>,
    /// ln(1 + upvotes) per candidate, which the subscriber's trend knob scales.
    popularity: Vec<f64>,
    /// Upvotes per candidate, beside each other for the ranking's scans.
    upvotes: Vec<i32>,
    /// Phrase (as stems) → its acronym or long forms.
    variants: HashMap<Vec<String>, Vec<Vec<String>>>,
    authors_lower: Vec<Vec<String>>,
    /// The candidates' sentence vectors, once the model has embedded them.
    semantic: Option<Vectors>,
    /// Topic → the candidates it matches literally, computed once per edition and topic
    /// (many subscribers share a topic).
    matched: TopicMemo<(u32, f64, Field)>,
}

/// A topic's literal matches: (candidate, value, field), strongest field per candidate.
type TopicMatches = Arc<[(u32, f64, Field)]>;

/// Matches the topic memo holds (24 bytes each: about 24 MB).
const MEMO_MATCHES: usize = 1 << 20;

/// The stems of a set of candidates, each with an id, and where each occurs.
#[derive(Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
    stems: Vec<String>,
    /// Per stem id: (candidate, field, word position).
    postings: Vec<Vec<(u32, Field, u32)>>,
}

impl Vocabulary {
    /// The id of `stem`, new when it is new.
    fn id(&mut self, stem: std::borrow::Cow<'_, str>) -> u32 {
        if let Some(&id) = self.ids.get(stem.as_ref()) {
            return id;
        }
        let id = self.stems.len() as u32;
        self.ids.insert(stem.clone().into_owned(), id);
        self.stems.push(stem.into_owned());
        self.postings.push(Vec::new());
        id
    }

    /// A candidate's title, keywords and abstract as stem ids, with their positions recorded.
    fn read_fields(&mut self, ci: u32, c: &Candidate, stemmer: &Stemmer) -> [Vec<u32>; 3] {
        let keywords = c.ai_keywords.join(" | ");
        let texts = [c.title.as_str(), keywords.as_str(), c.abstract_text.as_str()];
        let mut ids: [Vec<u32>; 3] = Default::default();
        for (field, text) in Field::ALL.into_iter().zip(texts) {
            for (pos, w) in words(text).enumerate() {
                let id = self.id(stemmer.stem(&w));
                ids[field as usize].push(id);
                self.postings[id as usize].push((ci, field, pos as u32));
            }
        }
        ids
    }
}

/// Each candidate's TF-IDF vector over stem ids, weighted as a taste weighs rated papers.
fn candidate_vectors(
    fields: &[[Vec<u32>; 3]],
    phrase_ids: &[Vec<u32>],
    idf: &[f64],
) -> Vec<Vec<(u32, f32)>> {
    fields
        .iter()
        .zip(phrase_ids)
        .map(|([title, keywords, abs], phrases)| {
            weigh([(title, 2.0), (keywords, 1.5), (abs, 1.0), (phrases, 1.0)], |id| {
                idf[*id as usize]
            })
            .into_iter()
            .map(|(id, w)| (id, w as f32))
            .collect()
        })
        .collect()
}

impl CandidateSet {
    /// Indexes `candidates`. `lexicon` gives IDF and acronyms; when it knows fewer papers
    /// than there are candidates (nothing indexed yet), the candidates' own counts serve.
    pub fn new(candidates: Vec<Candidate>, lexicon: &Lexicon) -> Self {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut vocabulary = Vocabulary::default();
        let fields: Vec<[Vec<u32>; 3]> = candidates
            .iter()
            .enumerate()
            .map(|(ci, c)| vocabulary.read_fields(ci as u32, c, &stemmer))
            .collect();
        // Keyword phrases are features of the vectors only (no positions to match).
        let phrase_ids: Vec<Vec<u32>> = candidates
            .iter()
            .map(|c| {
                let features = keyword_features(&c.ai_keywords);
                features.into_iter().map(|f| vocabulary.id(f.into())).collect()
            })
            .collect();
        let own;
        let lexicon = if (lexicon.docs as usize) < candidates.len() {
            own = own_lexicon(&candidates, lexicon);
            &own
        } else {
            lexicon
        };
        let idf: Vec<f64> = vocabulary.stems.iter().map(|s| lexicon.idf(s)).collect();
        let vectors = candidate_vectors(&fields, &phrase_ids, &idf);
        let mut weights: Vec<Vec<(u32, f32)>> = vec![Vec::new(); vocabulary.stems.len()];
        for (ci, v) in vectors.iter().enumerate() {
            for &(id, w) in v {
                weights[id as usize].push((ci as u32, w));
            }
        }
        let authors_lower =
            candidates.iter().map(|c| c.authors.iter().map(|a| fold(a)).collect()).collect();
        let by_id =
            candidates.iter().enumerate().map(|(i, c)| (c.arxiv_id.clone(), i as u32)).collect();
        let popularity = candidates.iter().map(|c| upvote_score(c.upvotes)).collect();
        let upvotes = candidates.iter().map(|c| c.upvotes).collect();
        Self {
            candidates,
            stemmer,
            vocabulary: vocabulary.ids,
            fields,
            postings: vocabulary.postings,
            idf,
            idf_unseen: lexicon.idf(""),
            weights,
            vectors,
            variants: lexicon.variants(),
            by_id,
            popularity,
            upvotes,
            authors_lower,
            semantic: None,
            matched: TopicMemo::new(MEMO_MATCHES),
        }
    }

    /// Ranks by meaning too, with these vectors (in the candidates' order).
    pub fn with_vectors(mut self, vectors: Vectors) -> Self {
        if vectors.len() == self.candidates.len() {
            self.semantic = Some(vectors);
        }
        self
    }

    pub fn vectors(&self) -> Option<&Vectors> {
        self.semantic.as_ref()
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

    /// The ways to say a topic: its own words, and its acronym or long forms, as word ids
    /// (`None`: no candidate has that word) with their IDF.
    fn alternatives(&self, topic: &str) -> Vec<Vec<(Option<u32>, f64)>> {
        let own: Vec<String> = words(topic).map(|w| self.stemmer.stem(&w).into_owned()).collect();
        if own.is_empty() {
            return Vec::new();
        }
        let variants = self.variants.get(&own).cloned().unwrap_or_default();
        std::iter::once(own)
            .chain(variants)
            .map(|stems| {
                stems
                    .iter()
                    .map(|s| match self.vocabulary.get(s) {
                        Some(&id) => (Some(id), self.idf[id as usize]),
                        None => (None, self.idf_unseen),
                    })
                    .collect()
            })
            .collect()
    }

    /// Marks in `best` the strongest field of each candidate where the phrase occurs,
    /// listing the candidates touched. The rarest word of the phrase drives the scan.
    fn phrase_hits(&self, phrase: &[u32], best: &mut [u8], touched: &mut Vec<u32>) {
        touched.clear();
        let Some((anchor, postings)) = phrase
            .iter()
            .enumerate()
            .map(|(i, w)| (i, &self.postings[*w as usize]))
            .min_by_key(|(_, p)| p.len())
        else {
            return;
        };
        for &(ci, field, pos) in postings {
            let Some(start) = (pos as usize).checked_sub(anchor) else { continue };
            let words = &self.fields[ci as usize][field as usize];
            // Compared word by word: phrases are a few words, and a call to memcmp per
            // posting costed more than the comparison itself.
            let found = words
                .get(start..start + phrase.len())
                .is_some_and(|at| at.iter().zip(phrase).all(|(a, b)| a == b));
            if found {
                let slot = &mut best[ci as usize];
                if *slot == NONE {
                    touched.push(ci);
                }
                *slot = (*slot).min(field as u8);
            }
        }
    }

    /// Scores one topic into `out` (best score and field per candidate, `touched` lists
    /// them): the phrase or one of its variants as written, else its weighty words
    /// together in one field; rare words weigh more than common ones.
    fn topic_scores(&self, topic: &str, scratch: &mut Scratch) {
        scratch.clear_scored();
        let alternatives = self.alternatives(topic);
        // An acronym and its long form mean the same: each counts as the weightier one.
        let topic_mass = alternatives
            .iter()
            .map(|alt| alt.iter().map(|(_, idf)| idf).sum::<f64>())
            .fold(0.0, f64::max);
        for alt in alternatives {
            let mass: f64 = alt.iter().map(|(_, idf)| idf).sum();
            if alt.iter().all(|(id, _)| id.is_some()) && topic_mass >= MIN_MATCH_MASS {
                let mass = topic_mass;
                let phrase: Vec<u32> = alt.iter().filter_map(|(id, _)| *id).collect();
                let mut touched = std::mem::take(&mut scratch.touched);
                self.phrase_hits(&phrase, &mut scratch.best, &mut touched);
                for &ci in &touched {
                    let field = Field::ALL[scratch.best[ci as usize] as usize];
                    scratch.best[ci as usize] = NONE;
                    scratch.offer(ci, field, field.weight() * mass.min(3.0 * PHRASE_NORM));
                }
                scratch.touched = touched;
            }
            if alt.len() < 2 {
                continue;
            }
            // Loose: the words apart, within one field.
            for (bit, (id, idf)) in alt.iter().enumerate().take(32) {
                let Some(id) = id else { continue };
                if *idf < MIN_IDF {
                    continue;
                }
                for &(ci, field, _) in &self.postings[*id as usize] {
                    let masks = &mut scratch.masks[ci as usize];
                    if *masks == [0; 3] {
                        scratch.masked.push(ci);
                    }
                    masks[field as usize] |= 1 << bit;
                }
            }
            for ci in std::mem::take(&mut scratch.masked) {
                let fields = std::mem::take(&mut scratch.masks[ci as usize]);
                for field in Field::ALL {
                    let mask = fields[field as usize];
                    let found: f64 = alt
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| *bit < 32 && mask & (1 << bit) != 0)
                        .map(|(_, (_, idf))| idf)
                        .sum();
                    if found >= MIN_MATCH_MASS && found >= LOOSE_COVERAGE * mass {
                        let value = LOOSE_FACTOR * found.min(3.0 * PHRASE_NORM);
                        scratch.offer(ci, field, field.weight() * value);
                    }
                }
            }
        }
    }

    /// The taste's terms that occur in this set, as (word id, weight, liked paper).
    fn resolve(&self, taste: &Taste) -> Vec<(u32, f32, i16)> {
        taste
            .terms
            .iter()
            .filter_map(|(stem, w, src)| self.vocabulary.get(stem).map(|&id| (id, *w, *src)))
            .collect()
    }

    /// How close each candidate is to the subscriber's taste (cosine of unit vectors).
    fn taste_scores(&self, terms: &[(u32, f32, i16)]) -> Vec<f64> {
        let mut out = vec![0.0f64; self.len()];
        for &(id, w, _) in terms {
            for &(ci, x) in &self.weights[id as usize] {
                out[ci as usize] += f64::from(w) * f64::from(x);
            }
        }
        out
    }

    /// The candidates `topic` matches, as the digest matches it.
    pub(crate) fn topic_matches(&self, topic: &str) -> Vec<usize> {
        let mut scratch = Scratch::new(self.len());
        self.topic_scores(topic, &mut scratch);
        scratch.scored_list.iter().map(|&ci| ci as usize).collect()
    }

    /// `topic_scores` of a topic, computed once per edition and topic (`scratch` is made
    /// when a topic is not known yet, and reused for the next).
    fn memoized_matches(&self, topic: &str, scratch: &mut Option<Scratch>) -> TopicMatches {
        self.matched.get_or_compute(topic, || {
            let scratch = scratch.get_or_insert_with(|| Scratch::new(self.len()));
            self.topic_scores(topic, scratch);
            let matches = scratch.scored_list.iter().map(|&ci| {
                let (value, field) = scratch.scored[ci as usize];
                (ci, value, field)
            });
            matches.collect()
        })
    }

    /// The liked paper that explains most of a candidate's closeness to the taste.
    fn liked_reason(
        &self,
        index: usize,
        terms: &[(u32, f32, i16)],
        taste: &Taste,
    ) -> Option<Reason> {
        let vector = &self.vectors[index];
        let mut by_paper = vec![0.0f64; taste.liked.len()];
        for &(id, w, src) in terms {
            let Ok(src) = usize::try_from(src) else { continue };
            if let (Some(slot), Ok(at)) =
                (by_paper.get_mut(src), vector.binary_search_by_key(&id, |&(i, _)| i))
            {
                *slot += f64::from(w) * f64::from(vector[at].1);
            }
        }
        let (best, _) = by_paper
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        Some(Reason::Liked(taste.liked[best].1.clone()))
    }

    /// Each candidate's closeness to what the subscriber rated up, by meaning (when the
    /// taste was trained under the edition's model).
    fn taste_meaning(&self, taste: &Taste) -> Option<Vec<f32>> {
        let vectors = self.semantic.as_ref()?;
        let learned = taste.meaning.as_ref()?;
        (learned.model == vectors.model() && learned.direction.len() == vectors.dim())
            .then(|| vectors.similarities(&learned.direction.unpack()))
    }

    /// The liked paper closest in meaning to a candidate (`liked`: the taste's liked
    /// vectors, unpacked once per ranking).
    fn liked_by_meaning(
        &self,
        index: usize,
        liked: &[(usize, Query)],
        taste: &Taste,
    ) -> Option<Reason> {
        let vectors = self.semantic.as_ref()?;
        let (_, at) = liked
            .iter()
            .filter_map(|(at, v)| Some((vectors.similarity(index, v)?, *at)))
            .filter(|(sim, _)| *sim >= TASTE_MEANING_REASON)
            .max_by(|a, b| a.0.total_cmp(&b.0))?;
        taste.liked.get(at).map(|(_, title)| Reason::Liked(title.clone()))
    }

    /// The subscriber's digest: matching papers not in `exclude` nor rated down, strongest
    /// first, at most `interests.limit`. A subscriber with no typed interests gets what their
    /// ratings point to, then the most upvoted papers.
    pub fn rank(&self, interests: &Interests, exclude: &HashSet<&str>) -> Vec<Pick> {
        let blocked = self.blocked(interests, exclude);
        let typed = interests.typed();
        let (strength, hits) = if typed {
            self.literal_strength(interests)
        } else {
            (vec![0.0; self.len()], Vec::new())
        };
        let topic_sims = if typed { self.topic_similarities(interests) } else { Vec::new() };
        let (meaning, nearest) = self.meaning_strength(interests, &topic_sims);
        let liked_sims = self.taste_meaning(&interests.taste);
        let terms = self.resolve(&interests.taste);
        let taste = if terms.is_empty() { None } else { Some(self.taste_scores(&terms)) };
        let trend = interests.trend.clamp(0.0, 1.0);
        let (taste_near, liked_near) =
            (taste.as_deref().unwrap_or(&[]), liked_sims.as_deref().unwrap_or(&[]));
        let mut scored: Vec<(usize, f64)> = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            if blocked[i] || self.upvotes[i] < interests.min_upvotes {
                continue;
            }
            let closeness = taste_near.get(i).copied().unwrap_or(0.0);
            let liked = liked_near.get(i).copied().unwrap_or(f32::MIN);
            let close = closeness >= TASTE_MIN || liked >= TASTE_MEANING_MIN;
            if typed && strength[i] <= 0.0 && nearest[i] < MEANING_MIN && !close {
                continue;
            }
            let liked = TASTE_MEANING_WEIGHT * f64::from((liked - TASTE_MEANING_FLOOR).max(0.0));
            let typed = strength[i] + meaning[i];
            scored.push((i, typed + TASTE_WEIGHT * closeness + liked + trend * self.popularity[i]));
        }
        self.keep_best(&mut scored, interests.limit);
        let why = Why {
            set: self,
            interests,
            topic_sims: &topic_sims,
            terms: &terms,
            taste: taste.as_deref(),
            liked_sims: liked_sims.as_deref(),
            liked_vectors: std::cell::OnceCell::new(),
        };
        let pick_hits = hits_of(&scored, &hits, self.len());
        scored
            .into_iter()
            .zip(pick_hits)
            .map(|((index, score), hits)| Pick { index, score, reasons: why.reasons(index, hits) })
            .collect()
    }

    /// Candidates the subscriber must not get: excluded by the caller, or rated down.
    fn blocked(&self, interests: &Interests, exclude: &HashSet<&str>) -> Vec<bool> {
        let mut blocked = vec![false; self.len()];
        let excluded = exclude.iter().copied();
        for id in excluded.chain(interests.taste.rejected.iter().map(String::as_str)) {
            if let Some(&i) = self.by_id.get(id) {
                blocked[i as usize] = true;
            }
        }
        blocked
    }

    /// What the typed topics, categories and authors match literally: each candidate's
    /// strength, and the hits a why-line names.
    fn literal_strength(&self, interests: &Interests) -> (Vec<f64>, Vec<(u32, Hit)>) {
        let mut strength = vec![0.0f64; self.len()];
        let mut hits: Vec<(u32, Hit)> = Vec::new();
        let mut scratch = None;
        for (ti, topic) in interests.topics.iter().enumerate() {
            let trust = interests.taste.topic_trust(topic);
            for &(ci, value, field) in self.memoized_matches(topic, &mut scratch).iter() {
                strength[ci as usize] += trust * value / PHRASE_NORM;
                hits.push((ci, Hit::Topic(ti, field)));
            }
        }
        let wanted_authors: Vec<String> = interests.authors.iter().map(|a| fold(a)).collect();
        if interests.categories.is_empty() && wanted_authors.is_empty() {
            return (strength, hits);
        }
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
        (strength, hits)
    }

    /// By meaning: each topic's closeness to every candidate (shared across subscribers).
    fn topic_similarities(&self, interests: &Interests) -> Vec<(usize, Arc<[f32]>)> {
        let Some(vectors) = &self.semantic else { return Vec::new() };
        interests
            .topics
            .iter()
            .enumerate()
            .filter_map(|(ti, topic)| {
                let key = topic_key(topic);
                let query = interests.topic_vectors.get(&key)?;
                Some((ti, vectors.topic_similarities(&key, query)))
            })
            .collect()
    }

    /// Each candidate's score by meaning over the topics, and its nearest topic's cosine.
    fn meaning_strength(
        &self,
        interests: &Interests,
        topic_sims: &[(usize, Arc<[f32]>)],
    ) -> (Vec<f64>, Vec<f32>) {
        let mut meaning = vec![0.0f64; self.len()];
        let mut nearest = vec![f32::MIN; self.len()];
        for (ti, sims) in topic_sims {
            let trust = interests.taste.topic_trust(&interests.topics[*ti]);
            for (i, &sim) in sims.iter().enumerate() {
                nearest[i] = nearest[i].max(sim);
                if sim > MEANING_FLOOR {
                    meaning[i] += trust * MEANING_WEIGHT * f64::from(sim - MEANING_FLOOR);
                }
            }
        }
        (meaning, nearest)
    }

    /// The best `limit` (0: all) of `scored`, strongest first.
    fn keep_best(&self, scored: &mut Vec<(usize, f64)>, limit: usize) {
        let order = |a: &(usize, f64), b: &(usize, f64)| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.upvotes[b.0].cmp(&self.upvotes[a.0]))
                // Candidates come ordered by upvotes and id: their index breaks the last ties.
                .then_with(|| a.0.cmp(&b.0))
        };
        if limit > 0 && scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, order);
            scored.truncate(limit);
        }
        scored.sort_by(order);
    }
}

/// What one ranking knows when it says why each pick was picked.
struct Why<'a> {
    set: &'a CandidateSet,
    interests: &'a Interests,
    topic_sims: &'a [(usize, Arc<[f32]>)],
    terms: &'a [(u32, f32, i16)],
    taste: Option<&'a [f64]>,
    liked_sims: Option<&'a [f32]>,
    /// The liked papers' vectors as queries, made once and only when a why-line needs them.
    liked_vectors: std::cell::OnceCell<Vec<(usize, Query)>>,
}

impl Why<'_> {
    /// Literal hits first, then topics close by meaning, then the liked paper it resembles;
    /// trending when nothing else.
    fn reasons(&self, index: usize, hits: Vec<Hit>) -> Vec<Reason> {
        let interests = self.interests;
        let mut reasons: Vec<Reason> = hits
            .into_iter()
            .map(|hit| match hit {
                Hit::Topic(t, field) => Reason::Topic { topic: interests.topics[t].clone(), field },
                Hit::Category(k) => Reason::Category(interests.categories[k].clone()),
                Hit::Author(k) => Reason::Author(interests.authors[k].clone()),
            })
            .collect();
        let mut close: Vec<(f32, usize)> = self
            .topic_sims
            .iter()
            .filter(|(ti, sims)| {
                sims[index] >= MEANING_MIN
                    && !reasons.iter().any(|r| {
                        matches!(r, Reason::Topic { topic, .. } if *topic == interests.topics[*ti])
                    })
            })
            .map(|(ti, sims)| (sims[index], *ti))
            .collect();
        close.sort_by(|a, b| b.0.total_cmp(&a.0));
        reasons
            .extend(close.into_iter().map(|(_, ti)| Reason::Close(interests.topics[ti].clone())));
        reasons.extend(self.liked(index));
        if reasons.is_empty() {
            reasons.push(Reason::Trending);
        }
        reasons
    }

    /// The liked paper this candidate resembles, by words, else by meaning.
    fn liked(&self, index: usize) -> Option<Reason> {
        let taste = &self.interests.taste;
        if self.taste.is_some_and(|t| t[index] >= TASTE_REASON)
            && let Some(reason) = self.set.liked_reason(index, self.terms, taste)
        {
            return Some(reason);
        }
        self.liked_sims.filter(|t| t[index] >= TASTE_MEANING_REASON)?;
        let liked_vectors = self.liked_vectors.get_or_init(|| {
            taste.meaning.as_ref().map_or_else(Vec::new, |m| {
                m.liked.iter().map(|(at, v)| (usize::from(*at), Query::from(v))).collect()
            })
        });
        self.set.liked_by_meaning(index, liked_vectors, taste)
    }
}

/// Per-topic working memory, reused across a subscriber's topics.
struct Scratch {
    best: Vec<u8>,
    touched: Vec<u32>,
    /// Per candidate: which of a phrase's words each field has.
    masks: Vec<[u32; 3]>,
    masked: Vec<u32>,
    /// Per candidate: the best value for this topic and its field; `scored_list` lists them.
    scored: Vec<(f64, Field)>,
    scored_list: Vec<u32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            best: vec![NONE; n],
            touched: Vec::new(),
            masks: vec![[0; 3]; n],
            masked: Vec::new(),
            scored: vec![(0.0, Field::Title); n],
            scored_list: Vec::new(),
        }
    }

    fn clear_scored(&mut self) {
        for ci in self.scored_list.drain(..) {
            self.scored[ci as usize] = (0.0, Field::Title);
        }
    }

    fn offer(&mut self, ci: u32, field: Field, value: f64) {
        let slot = &mut self.scored[ci as usize];
        if slot.0 == 0.0 {
            self.scored_list.push(ci);
        }
        if value > slot.0 {
            *slot = (value, field);
        }
    }
}

/// The candidates' own lexicon, with the acronyms the stored one knows.
fn own_lexicon(candidates: &[Candidate], stored: &Lexicon) -> Lexicon {
    let terms: Vec<_> =
        candidates.iter().map(|c| read_paper(&c.title, &c.abstract_text, &c.ai_keywords)).collect();
    let mut own = Lexicon::from_papers(&terms);
    for (short, longs) in &stored.acronyms {
        let forms = own.acronyms.entry(short.clone()).or_default();
        for l in longs {
            if !forms.contains(l) {
                forms.push(l.clone());
            }
        }
    }
    own
}

const NONE: u8 = u8::MAX;

/// The hits of each pick, in the picks' order, from one pass over every hit.
fn hits_of(picks: &[(usize, f64)], hits: &[(u32, Hit)], candidates: usize) -> Vec<Vec<Hit>> {
    let mut slot = vec![u32::MAX; candidates];
    for (at, (index, _)) in picks.iter().enumerate() {
        slot[*index] = at as u32;
    }
    let mut by_pick = vec![Vec::new(); picks.len()];
    for (ci, hit) in hits {
        if let Some(list) = by_pick.get_mut(slot[*ci as usize] as usize) {
            list.push(*hit);
        }
    }
    by_pick
}

/// A match, by index into the subscriber's interests.
#[derive(Clone, Copy)]
enum Hit {
    Topic(usize, Field),
    Category(usize),
    Author(usize),
}

/// Upvotes count with diminishing returns; the subscriber's trend knob scales this.
fn upvote_score(upvotes: i32) -> f64 {
    (1.0 + upvotes.max(0) as f64).ln()
}

fn fold(name: &str) -> String {
    normalize_whitespace(name).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RatedPaper;

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

    /// The papers among twenty unrelated ones, so word weights are as in a real day.
    fn set_of(papers: Vec<Candidate>) -> CandidateSet {
        let mut all = papers;
        all.extend((0..20).map(|i| {
            paper(&format!("f{i}"), &format!("Filler {i}"), &format!("a study of thing{i}"), 0)
        }));
        CandidateSet::new(all, &Lexicon::default())
    }

    fn interests(topics: &[&str]) -> Interests {
        Interests { topics: topics.iter().map(|t| t.to_string()).collect(), ..Default::default() }
    }

    fn ids(set: &CandidateSet, picks: &[Pick]) -> Vec<String> {
        picks.iter().map(|p| set.candidates()[p.index].arxiv_id.clone()).collect()
    }

    #[test]
    fn topics_match_as_stemmed_phrases_in_any_case() {
        let set = set_of(vec![
            paper("1", "A Spiking Neural Network for Vision", "", 1),
            paper("2", "Neural spiking is weird", "nothing about networks", 50),
            paper("3", "Other", "We train SPIKING neural-networks at scale.", 2),
        ]);
        let picks = set.rank(&interests(&["spiking neural networks"]), &HashSet::new());
        assert_eq!(ids(&set, &picks), ["1", "3"], "a phrase, not loose words across fields");
        assert_eq!(
            picks[0].reasons,
            [Reason::Topic { topic: "spiking neural networks".into(), field: Field::Title }]
        );
        assert_eq!(picks[1].reasons[0].describe(2), "matches: spiking neural networks");
    }

    #[test]
    fn close_variants_match_and_words_apart_count_less() {
        let set = set_of(vec![
            paper("hyphen", "Vision-Language Models see", "", 0),
            paper("apart", "Other", "a language model for vision tasks", 0),
        ]);
        let picks = set.rank(&interests(&["vision language model"]), &HashSet::new());
        assert_eq!(ids(&set, &picks), ["hyphen", "apart"]);
        assert!(picks[0].score > picks[1].score);
    }

    #[test]
    fn title_beats_keywords_beats_abstract_and_more_topics_beat_fewer() {
        let mut kw = paper("kw", "Unrelated", "", 0);
        kw.ai_keywords = vec!["diffusion".into()];
        let set = set_of(vec![
            paper("abs", "Unrelated", "uses diffusion", 0),
            kw,
            paper("title", "Diffusion everywhere", "", 0),
            paper("both", "Diffusion transformers", "", 0),
        ]);
        let picks = set.rank(&interests(&["diffusion", "transformer"]), &HashSet::new());
        assert_eq!(ids(&set, &picks), ["both", "title", "kw", "abs"]);
    }

    #[test]
    fn rare_words_weigh_more_and_common_words_alone_match_nothing() {
        let mut papers: Vec<Candidate> = (0..12)
            .map(|i| paper(&format!("c{i}"), "Learning things", "we learn a model", 100))
            .collect();
        papers.push(paper("rare", "Other", "spiking neurons", 0));
        let set = set_of(papers);
        let picks = set.rank(&interests(&["learning", "spiking"]), &HashSet::new());
        assert_eq!(ids(&set, &picks), ["rare"], "'learning' is in a third of the papers");
        assert!(set.rank(&interests(&["learning"]), &HashSet::new()).is_empty());
    }

    #[test]
    fn acronyms_learned_from_the_papers_work_both_ways() {
        let set = set_of(vec![
            paper(
                "def",
                "Aligning models",
                "We use reinforcement learning from human feedback (RLHF).",
                0,
            ),
            paper("short", "RLHF at scale", "", 0),
            paper("long", "Other", "reinforcement learning from human feedback helps", 0),
        ]);
        let mut short = ids(&set, &set.rank(&interests(&["RLHF"]), &HashSet::new()));
        short.sort();
        assert_eq!(short, ["def", "long", "short"]);
        let long =
            set.rank(&interests(&["reinforcement learning from human feedback"]), &HashSet::new());
        let mut long = ids(&set, &long);
        long.sort();
        assert_eq!(long, ["def", "long", "short"], "the acronym alone in a title counts");
    }

    #[test]
    fn upvotes_order_equal_matches_the_trend_knob_scales_them_and_the_minimum_filters() {
        let set = set_of(vec![
            paper("low", "RLHF and reward models", "", 3),
            paper("high", "Reward hacking", "mentions rlhf", 300),
        ]);
        let mut i = interests(&["rlhf"]);
        i.trend = 0.0;
        assert_eq!(ids(&set, &set.rank(&i, &HashSet::new())), ["low", "high"]);
        i.trend = 1.0;
        assert_eq!(ids(&set, &set.rank(&i, &HashSet::new())), ["high", "low"]);
        i.min_upvotes = 10;
        assert_eq!(set.rank(&i, &HashSet::new()).len(), 1);
    }

    #[test]
    fn categories_and_authors_match_too() {
        let mut p = paper("a", "Robots", "", 0);
        p.categories = vec!["cs.RO".into()];
        let set = CandidateSet::new(vec![p, paper("b", "Something", "", 0)], &Lexicon::default());
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
        let set = CandidateSet::new(
            vec![paper("a", "A", "", 5), paper("b", "B", "", 9), paper("c", "C", "", 1)],
            &Lexicon::default(),
        );
        let trending = set.rank(&Interests { limit: 2, ..Default::default() }, &HashSet::new());
        assert_eq!(trending.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(trending[0].reasons, [Reason::Trending]);
        assert!(set.rank(&interests(&["quantum chromodynamics"]), &HashSet::new()).is_empty());
    }

    #[test]
    fn excluded_papers_are_never_picked_and_the_cap_holds() {
        let set = set_of((0..8).map(|i| paper(&i.to_string(), "Spiking agents", "", i)).collect());
        let exclude: HashSet<&str> = ["7", "6"].into_iter().collect();
        let picks = set.rank(
            &Interests { topics: vec!["spiking".into()], limit: 3, ..Default::default() },
            &exclude,
        );
        assert_eq!(ids(&set, &picks), ["5", "4", "3"]);
    }

    fn rated(c: &Candidate, up: bool) -> RatedPaper {
        RatedPaper {
            arxiv_id: c.arxiv_id.clone(),
            title: c.title.clone(),
            abstract_text: c.abstract_text.clone(),
            keywords: vec![],
            up,
        }
    }

    #[test]
    fn ratings_lead_a_subscriber_without_topics_name_the_liked_paper_and_exclude_the_disliked() {
        let spiking =
            paper("s1", "Spiking neural networks for vision", "neuromorphic spiking chips", 1);
        let video = paper("v1", "Video diffusion at scale", "a video generator", 500);
        let set = set_of(vec![
            paper("s2", "Energy of spiking neurons", "neuromorphic hardware runs spiking nets", 2),
            paper("v2", "Longer video diffusion", "video generator with diffusion", 0),
            paper("v3", "Video editing", "edit a video", 300),
            spiking.clone(),
            video.clone(),
        ]);
        let taste = Taste::train(
            &[rated(&spiking, true), rated(&video, false)],
            &[],
            &Lexicon::from_papers(
                &set.candidates()
                    .iter()
                    .map(|c| read_paper(&c.title, &c.abstract_text, &[]))
                    .collect::<Vec<_>>(),
            ),
        );
        let subscriber = Interests { taste, limit: 50, ..Default::default() };
        let picks = set.rank(&subscriber, &HashSet::new());
        let order = ids(&set, &picks);
        let mut lead = order[..2].to_vec();
        lead.sort();
        assert_eq!(lead, ["s1", "s2"], "the liked theme leads although it has few upvotes");
        assert!(!order.contains(&"v1".to_string()), "a paper rated down never comes back");
        assert!(
            order.iter().position(|i| i == "v2") > order.iter().position(|i| i == "f0"),
            "papers like the disliked one sink below unrelated ones"
        );
        let s2 = picks.iter().find(|p| set.candidates()[p.index].arxiv_id == "s2").unwrap();
        assert_eq!(s2.reasons, [Reason::Liked(spiking.title.clone())]);
        assert_eq!(
            s2.reasons[0].describe(2),
            "like “Spiking neural networks for vision”, which you rated up"
        );
    }

    #[test]
    fn a_long_liked_title_is_cut_at_a_word() {
        let reason = Reason::Liked(
            "Spiking Neural Networks for Energy-Efficient Event Cameras on Tiny Microcontrollers"
                .into(),
        );
        assert_eq!(
            reason.describe(0),
            "like “Spiking Neural Networks for Energy-Efficient Event Cameras …”, which you rated up"
        );
    }

    #[test]
    fn with_topics_a_paper_close_to_the_taste_gets_in_without_matching_a_topic() {
        let liked = paper("l", "Neuromorphic chips", "spiking hardware saves energy", 0);
        let set = set_of(vec![
            paper("t", "Diffusion transformers", "", 0),
            paper("n", "Neuromorphic spiking hardware", "energy of chips", 0),
            liked.clone(),
        ]);
        let lexicon = Lexicon::from_papers(
            &set.candidates()
                .iter()
                .map(|c| read_paper(&c.title, &c.abstract_text, &[]))
                .collect::<Vec<_>>(),
        );
        let mut subscriber = interests(&["diffusion"]);
        assert_eq!(ids(&set, &set.rank(&subscriber, &HashSet::new())), ["t"]);
        subscriber.taste = Taste::train(&[rated(&liked, true)], &subscriber.topics, &lexicon);
        let with_taste = ids(&set, &set.rank(&subscriber, &["l"].into_iter().collect()));
        assert_eq!(with_taste.len(), 2);
        assert!(with_taste.contains(&"n".to_string()) && with_taste.contains(&"t".to_string()));
    }
}
