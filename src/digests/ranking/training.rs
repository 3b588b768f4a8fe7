//! Training a taste from ratings (most recent first) and the subscriber's topics: the
//! profile of stems, the papers a why-line can name, the trust of each typed topic (with
//! ranking's own matcher), and the same ratings by meaning. Pure.

use std::collections::HashMap;

use super::meaning::MeaningTaste;
use super::rank::CandidateSet;
use super::taste::Taste;
use crate::domain::lexicon::{Lexicon, keyword_features, stems, weigh};
use crate::domain::{Candidate, RatedPaper};

/// Terms kept in a profile: enough to describe a few themes, few enough to score 1,000
/// papers in microseconds.
const PROFILE_TERMS: usize = 80;
/// Papers rated down pull away a quarter as hard as papers rated up pull towards.
const DOWN_WEIGHT: f64 = 0.25;
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

impl Taste {
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
        let topic_stems: Vec<String> = topics.iter().flat_map(|t| stems(t)).collect();
        let topic_vector = weigh([(&topic_stems, 1.0), (&[], 0.0), (&[], 0.0), (&[], 0.0)], idf);
        let terms = profile(&vectors(true), &vectors(false), &topic_vector);
        Taste { terms, liked, rejected, topic_trust, meaning: None }
    }
}

/// Rocchio: the mean of the papers rated up (the topics counting as one more) minus a
/// quarter of the mean of those rated down, its strongest `PROFILE_TERMS` stems at unit
/// length. Each stem remembers the liked paper that weighs most in it (-1: none).
fn profile(
    ups: &[Vec<(String, f64)>],
    downs: &[Vec<(String, f64)>],
    topic_vector: &[(String, f64)],
) -> Vec<(String, f32, i16)> {
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
        for (stem, w) in topic_vector {
            profile.entry(stem.clone()).or_insert((0.0, -1, 0.0)).0 += w * share;
        }
    }
    if !downs.is_empty() {
        let share = DOWN_WEIGHT / downs.len() as f64;
        for v in downs {
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
    terms
        .into_iter()
        .map(|(s, w, src)| (s, if norm > 0.0 { (w / norm) as f32 } else { 0.0 }, src))
        .collect()
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

impl MeaningTaste {
    /// From ratings (most recent first, as `Taste::train` reads them) and the vectors their
    /// papers have: the liked list's indexes are the taste's.
    pub fn from_ratings(
        model: &str,
        rated: &[RatedPaper],
        vectors: &HashMap<String, Vec<f32>>,
        topics: &[&[f32]],
    ) -> Option<Self> {
        let training = &rated[..rated.len().min(TRAINED_RATINGS)];
        // The liked list counts every paper rated up; training reads the most recent ones.
        let liked: Vec<(usize, &[f32])> = rated
            .iter()
            .enumerate()
            .filter(|(_, r)| r.up)
            .enumerate()
            .filter(|(_, (at, _))| *at < training.len())
            .filter_map(|(i, (_, r))| vectors.get(&r.arxiv_id).map(|v| (i, v.as_slice())))
            .collect();
        let disliked: Vec<&[f32]> = training
            .iter()
            .filter(|r| !r.up)
            .filter_map(|r| vectors.get(&r.arxiv_id).map(Vec::as_slice))
            .collect();
        Self::train(model, &liked, &disliked, topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lexicon::{Lexicon, read_paper};

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
