//! A subscriber's taste, learned from their 👍/👎: a Rocchio profile over the TF-IDF stems of
//! the papers they rated, with their typed topics as one more paper they liked. Trained
//! when a rating changes (cheap: a few dozen papers) and stored, so a send trains nothing.
//! Ratings also say how far to trust each typed topic: one whose matched papers the subscriber
//! mostly rated down counts less. Pure.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use super::lexicon::{Lexicon, keyword_features, stems};
use super::meaning::MeaningTaste;
use super::rank::{Candidate, CandidateSet};

/// The stored model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Taste {
    /// (stem, weight, index into `liked` of the rated paper that weighs most in it, or -1
    /// when it comes from the topics or weighs against). Unit length, strongest first.
    pub terms: Vec<(String, f32, i16)>,
    /// Papers rated up, (arXiv id, title), most recent first: the "why" names them.
    pub liked: Vec<(String, String)>,
    /// Papers rated down: never sent again.
    pub rejected: Vec<String>,
    /// Typed topics the ratings trust less than fully, with their trust (0–1): twice the
    /// share of the rated papers the topic matches that were rated up, smoothed, at most 1.
    #[serde(default)]
    pub topic_trust: Vec<(String, f32)>,
    /// The same ratings in the sentence-embedding space, when their papers had vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<MeaningTaste>,
}

/// A rated paper as training reads it.
#[derive(Clone, Debug)]
pub struct RatedPaper {
    pub arxiv_id: String,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub up: bool,
}

/// Terms kept in a profile: enough to describe a few themes, few enough to score 1,000
/// papers in microseconds.
const PROFILE_TERMS: usize = 80;
/// Papers rated down pull away half as hard as papers rated up pull towards.
const DOWN_WEIGHT: f64 = 0.25;
/// Stems in more than about a third of all papers ("model", "we") describe nothing.
pub const MIN_IDF: f64 = 1.0;
/// Ratings older than the most recent this many do not train (they still exclude).
pub const TRAINED_RATINGS: usize = 200;
/// Ratings read at all, the most recent: older ones neither train nor exclude (editions
/// cover a week at most, so what was rated down long before cannot come back). Bounds the
/// work of a rating however many one has made.
pub const KEPT_RATINGS: usize = 2000;
const KEPT_REJECTED: usize = 1000;
/// A topic's trust starts as if this many of its matches had been rated up and as many
/// down, so a couple of ratings move it little.
const TRUST_PRIOR: f64 = 2.0;

/// Weights of a text's stems: log term frequency times IDF, title counting twice and
/// keywords one and a half times the abstract, unit length. Shared with ranking, which
/// weighs candidates the same way over word ids.
pub fn weigh<T: Eq + Hash + Clone + Ord>(
    fields: [(&[T], f64); 4],
    idf: impl Fn(&T) -> f64,
) -> Vec<(T, f64)> {
    let mut tf: HashMap<&T, f64> = HashMap::new();
    for (words, weight) in fields {
        for w in words {
            *tf.entry(w).or_default() += weight;
        }
    }
    let mut out: Vec<(T, f64)> = tf
        .into_iter()
        .filter_map(|(t, f)| {
            let idf = idf(t);
            (idf >= MIN_IDF).then(|| (t.clone(), (1.0 + f.ln()) * idf))
        })
        .collect();
    normalize(&mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn normalize<T>(v: &mut [(T, f64)]) {
    let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, w)| *w /= norm);
    }
}

impl Taste {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.rejected.is_empty() && self.meaning.is_none()
    }

    /// How much a typed topic's matches count (1: as typed).
    pub fn topic_trust(&self, topic: &str) -> f64 {
        self.topic_trust.iter().find(|(t, _)| t == topic).map_or(1.0, |(_, w)| f64::from(*w))
    }

    /// Trains a profile from ratings (most recent first) and the subscriber's topics.
    /// Without any rating there is no taste: topics alone rank through matching.
    pub fn train(rated: &[RatedPaper], topics: &[String], lexicon: &Lexicon) -> Taste {
        Self::train_stemmed(rated, &StemmedPaper::of_training(rated), topics, lexicon)
    }

    /// As [`Taste::train`], with the training papers already stemmed (the caller needed
    /// their stems to load the lexicon).
    pub fn train_stemmed(
        rated: &[RatedPaper],
        stemmed: &[StemmedPaper],
        topics: &[String],
        lexicon: &Lexicon,
    ) -> Taste {
        // Editions cover a week at most: the latest few hundred papers rated down are all
        // a digest could still offer.
        let rejected: Vec<String> = rated
            .iter()
            .filter(|r| !r.up)
            .take(KEPT_REJECTED)
            .map(|r| r.arxiv_id.clone())
            .collect();
        // The papers a why-line can name: those liked among the ratings that train.
        let liked: Vec<(String, String)> = rated
            .iter()
            .take(TRAINED_RATINGS)
            .filter(|r| r.up)
            .map(|r| (r.arxiv_id.clone(), r.title.clone()))
            .collect();
        if rated.is_empty() {
            return Taste::default();
        }
        // A word no other stored paper has (a method's name) cannot find other papers:
        // it would only dilute the profile.
        let idf = |s: &String| {
            if lexicon.df.get(s).copied().unwrap_or(0) < 2 { 0.0 } else { lexicon.idf(s) }
        };
        let vector = |p: &StemmedPaper| {
            let (title, keywords) = (&p.title[..], &p.keywords[..]);
            let (abs, phrases) = (&p.abstract_text[..], &p.phrases[..]);
            weigh([(title, 2.0), (keywords, 1.5), (abs, 1.0), (phrases, 1.0)], idf)
        };
        let training = &rated[..rated.len().min(TRAINED_RATINGS)];
        let topic_trust = trust(training, topics, lexicon);
        let vectors = |up: bool| -> Vec<Vec<(String, f64)>> {
            training
                .iter()
                .zip(stemmed)
                .filter(|(r, _)| r.up == up)
                .map(|(_, p)| vector(p))
                .collect()
        };
        let (ups, downs) = (vectors(true), vectors(false));
        let topic_stems: Vec<String> = topics.iter().flat_map(|t| stems(t)).collect();
        let topic_vector = weigh([(&topic_stems, 1.0), (&[], 0.0), (&[], 0.0), (&[], 0.0)], idf);

        let positives = ups.len() + usize::from(!topic_vector.is_empty());
        // stem → (weight, strongest liked paper and its weight)
        let mut profile: HashMap<String, (f64, i16, f64)> = HashMap::new();
        if positives > 0 {
            let share = 1.0 / positives as f64;
            for (i, v) in ups.iter().enumerate() {
                for (stem, w) in v {
                    let e = profile.entry(stem.clone()).or_insert((0.0, -1, 0.0));
                    e.0 += w * share;
                    if *w > e.2 {
                        (e.1, e.2) = (i as i16, *w);
                    }
                }
            }
            for (stem, w) in &topic_vector {
                profile.entry(stem.clone()).or_insert((0.0, -1, 0.0)).0 += w * share;
            }
        }
        if !downs.is_empty() {
            let share = DOWN_WEIGHT / downs.len() as f64;
            for v in &downs {
                for (stem, w) in v {
                    profile.entry(stem.clone()).or_insert((0.0, -1, 0.0)).0 -= w * share;
                }
            }
        }
        let mut terms: Vec<(String, f64, i16)> = profile
            .into_iter()
            .filter(|(_, (w, _, _))| w.abs() > 1e-9)
            .map(|(s, (w, src, _))| (s, w, if w > 0.0 { src } else { -1 }))
            .collect();
        terms.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
        terms.truncate(PROFILE_TERMS);
        let norm = terms.iter().map(|t| t.1 * t.1).sum::<f64>().sqrt();
        let terms = terms
            .into_iter()
            .map(|(s, w, src)| (s, if norm > 0.0 { (w / norm) as f32 } else { 0.0 }, src))
            .collect();
        Taste { terms, liked, rejected, topic_trust, meaning: None }
    }
}

/// The stems of a rated paper, field by field, as training weighs them.
#[derive(Debug, Default)]
pub struct StemmedPaper {
    pub title: Vec<String>,
    pub abstract_text: Vec<String>,
    pub keywords: Vec<String>,
    pub phrases: Vec<String>,
}

impl StemmedPaper {
    pub fn new(r: &RatedPaper) -> Self {
        Self {
            title: stems(&r.title),
            abstract_text: stems(&r.abstract_text),
            keywords: stems(&r.keywords.join(" | ")),
            phrases: keyword_features(&r.keywords),
        }
    }

    /// The papers that train (the latest [`TRAINED_RATINGS`]), stemmed.
    pub fn of_training(rated: &[RatedPaper]) -> Vec<Self> {
        rated.iter().take(TRAINED_RATINGS).map(Self::new).collect()
    }

    /// Every stem of the paper (with repeats).
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.title.iter().chain(&self.abstract_text).chain(&self.keywords).chain(&self.phrases)
    }
}

/// Each typed topic's trust from the rated papers it matches (with the digest's matcher):
/// 2·(up + prior) / (matched + 2·prior), capped at 1, so a topic most of whose matches were
/// rated down counts in proportion. Only topics below 1 are listed.
fn trust(training: &[RatedPaper], topics: &[String], lexicon: &Lexicon) -> Vec<(String, f32)> {
    if topics.is_empty() || training.is_empty() {
        return Vec::new();
    }
    let rated = CandidateSet::new(
        training
            .iter()
            .map(|r| Candidate {
                arxiv_id: r.arxiv_id.clone(),
                title: r.title.clone(),
                abstract_text: r.abstract_text.clone(),
                ai_keywords: r.keywords.clone(),
                ..Default::default()
            })
            .collect(),
        lexicon,
    );
    topics
        .iter()
        .filter_map(|topic| {
            let matched = rated.topic_matches(topic);
            let up = matched.iter().filter(|&&i| training[i].up).count() as f64;
            let trust = 2.0 * (up + TRUST_PRIOR) / (matched.len() as f64 + 2.0 * TRUST_PRIOR);
            (trust < 1.0).then(|| (topic.clone(), trust as f32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::lexicon::{Lexicon, read_paper};

    fn rated(id: &str, title: &str, abs: &str, up: bool) -> RatedPaper {
        RatedPaper {
            arxiv_id: id.into(),
            title: title.into(),
            abstract_text: abs.into(),
            keywords: vec![],
            up,
        }
    }

    #[test]
    fn ratings_up_pull_towards_their_words_and_down_away() {
        let papers = [
            ("Spiking neural networks on chips", "spiking neurons save energy"),
            ("Diffusion models for video", "denoising diffusion generates video"),
            ("Language models", "we train language models"),
            ("More language models", "language models again"),
            ("Spiking and diffusion models", "both spiking and diffusion"),
            ("UniqueName models", "a language"),
            ("Other models", "language"),
            ("Models", "language"),
        ];
        let terms: Vec<_> = papers.iter().map(|(t, a)| read_paper(t, a, &[])).collect();
        let lexicon = Lexicon::from_papers(&terms);
        let taste = Taste::train(
            &[
                rated("s", papers[0].0, papers[0].1, true),
                rated("d", papers[1].0, papers[1].1, false),
            ],
            &[],
            &lexicon,
        );
        let weight = |s: &str| taste.terms.iter().find(|t| t.0 == s).map(|t| t.1).unwrap_or(0.0);
        assert!(weight("spike") > 0.0 && weight("diffus") < 0.0);
        assert_eq!(weight("model"), 0.0, "common words weigh nothing");
        assert_eq!(weight("chip"), 0.0, "nor words no other paper has");
        let spike = taste.terms.iter().find(|t| t.0 == "spike").unwrap();
        assert_eq!(spike.2, 0, "the liked paper that carries it");
        assert_eq!(taste.liked, [("s".to_string(), papers[0].0.to_string())]);
        assert_eq!(taste.rejected, ["d"]);
        let norm: f32 = taste.terms.iter().map(|t| t.1 * t.1).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn a_topic_whose_matches_were_rated_down_is_trusted_less() {
        let papers = [
            ("Alignment of video and text", "we align modalities"),
            ("Alignment of image and text", "contrastive alignment"),
            ("Alignment of audio and text", "audio alignment"),
            ("Alignment of 3D and text", "point clouds"),
            ("Safety alignment of language models", "refusals and jailbreaks"),
            ("Jailbreak attacks", "red teaming of safety"),
            ("Other things", "unrelated"),
            ("More things", "unrelated too"),
        ];
        // Among twenty unrelated stored papers, so "alignment" is a specific word.
        let fillers: Vec<String> = (0..20).map(|i| format!("filler thing{i}")).collect();
        let terms: Vec<_> = papers
            .iter()
            .map(|(t, a)| read_paper(t, a, &[]))
            .chain(fillers.iter().map(|f| read_paper(f, "", &[])))
            .collect();
        let lexicon = Lexicon::from_papers(&terms);
        let ratings: Vec<RatedPaper> = papers[..6]
            .iter()
            .enumerate()
            .map(|(i, (t, a))| rated(&i.to_string(), t, a, i >= 4))
            .collect();
        let taste = Taste::train(&ratings, &["alignment".into(), "jailbreak".into()], &lexicon);
        // "alignment" matched five rated papers, one rated up: 2·(1 + 2) / (5 + 4).
        assert!((taste.topic_trust("alignment") - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(taste.topic_trust("jailbreak"), 1.0, "its matches were rated up");
        assert_eq!(taste.topic_trust("never typed"), 1.0);
    }

    #[test]
    fn no_ratings_no_taste() {
        assert!(Taste::train(&[], &["rlhf".into()], &Lexicon::default()).is_empty());
    }
}
