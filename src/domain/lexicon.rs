//! What the stored papers teach about words: how rare each one is (for IDF weights) and
//! which acronyms stand for which phrases. Learned at ingest from the papers themselves
//! (`store::lexicon`), so nothing here is a hand-kept list. Pure.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use rust_stemmers::{Algorithm, Stemmer};

/// Lower-cased words, split on anything that is not a letter or digit (so hyphenated
/// words are two words: "vision-language" reads as "vision language").
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// English stems of the words of `text`: plural and singular, "models" and "model", meet.
pub fn stems(text: &str) -> Vec<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    words(text).map(|w| stemmer.stem(&w).into_owned()).collect()
}

/// Document frequencies over the stored papers, and the acronyms they define.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    /// Papers counted.
    pub docs: u32,
    /// Stem → papers in which it occurs.
    pub df: HashMap<String, u32>,
    /// Short form (lower-cased) → long forms as stems, most often seen first.
    pub acronyms: HashMap<String, Vec<Vec<String>>>,
}

/// What the lexicon takes from one paper.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaperTerms {
    /// Distinct stems of title, abstract and keywords.
    pub terms: Vec<String>,
    /// Acronym definitions: (short form lower-cased, long form as stems joined by spaces).
    pub acronyms: Vec<(String, String)>,
}

/// The stems and acronym definitions of one paper.
pub fn read_paper(title: &str, abstract_text: &str, keywords: &[String]) -> PaperTerms {
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    for text in [title, abstract_text].into_iter().chain(keywords.iter().map(String::as_str)) {
        for stem in stems(text) {
            if seen.insert(stem.clone()) {
                terms.push(stem);
            }
        }
    }
    for stem in keyword_features(keywords) {
        if seen.insert(stem.clone()) {
            terms.push(stem);
        }
    }
    let mut acronyms: Vec<(String, String)> = Vec::new();
    for text in [title, abstract_text] {
        for (short, long) in acronyms_in(text) {
            let pair = (short, long.join(" "));
            if !acronyms.contains(&pair) {
                acronyms.push(pair);
            }
        }
    }
    PaperTerms { terms, acronyms }
}

/// Each AI keyword as one feature ("k:reinforc learn"): curated phrases that related papers
/// share, weightier together than their words apart.
pub fn keyword_features(keywords: &[String]) -> Vec<String> {
    keywords
        .iter()
        .map(|k| stems(k))
        .filter(|s| s.len() > 1)
        .map(|s| format!("k:{}", s.join(" ")))
        .collect()
}

impl Lexicon {
    /// A lexicon of these papers alone (tests, benchmarks; the service reads it from the
    /// database).
    pub fn from_papers<'a>(papers: impl IntoIterator<Item = &'a PaperTerms>) -> Self {
        let mut lexicon = Lexicon::default();
        let mut pairs: HashMap<(String, String), u32> = HashMap::new();
        for p in papers {
            lexicon.docs += 1;
            for t in &p.terms {
                *lexicon.df.entry(t.clone()).or_default() += 1;
            }
            for pair in &p.acronyms {
                *pairs.entry(pair.clone()).or_default() += 1;
            }
        }
        lexicon.add_acronyms(pairs.into_iter().map(|((s, l), n)| (s, l, n)));
        lexicon
    }

    /// Adds (short, long form as stems joined by spaces, papers) definitions.
    pub fn add_acronyms(&mut self, pairs: impl IntoIterator<Item = (String, String, u32)>) {
        let mut by_short: HashMap<String, Vec<(u32, Vec<String>)>> = HashMap::new();
        for (short, long, n) in pairs {
            by_short
                .entry(short)
                .or_default()
                .push((n, long.split(' ').map(str::to_string).collect()));
        }
        for (short, mut longs) in by_short {
            longs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            // A definition seen once among several is more likely a one-off coinage.
            let top = longs[0].0;
            let forms = longs
                .into_iter()
                .filter(|(n, _)| *n * 4 >= top)
                .take(MAX_LONG_FORMS)
                .map(|(_, l)| l);
            self.acronyms.entry(short).or_default().extend(forms);
        }
    }

    /// Inverse document frequency: high for rare stems, near zero for stems in most papers.
    /// A stem never seen counts as seen once.
    pub fn idf(&self, stem: &str) -> f64 {
        let df = self.df.get(stem).copied().unwrap_or(0).max(1) as f64;
        let docs = (self.docs as f64).max(df);
        ((docs + 1.0) / (df + 0.5)).ln().max(0.0)
    }

    /// Other ways to say each phrase (as stems): an acronym's long forms, and a long
    /// form's acronym.
    pub fn variants(&self) -> HashMap<Vec<String>, Vec<Vec<String>>> {
        let mut out: HashMap<Vec<String>, Vec<Vec<String>>> = HashMap::new();
        for (short, longs) in &self.acronyms {
            let short = vec![short.clone()];
            for long in longs {
                out.entry(short.clone()).or_default().push(long.clone());
                out.entry(long.clone()).or_default().push(short.clone());
            }
        }
        out
    }
}

const MAX_LONG_FORMS: usize = 3;

/// Acronym definitions in running text, "long form (SHORT)", found as Schwartz and Hearst
/// (2003) do: the short form's letters are matched right to left against the words before
/// the parenthesis, its first letter at the start of a word.
pub fn acronyms_in(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(')') else { break };
        let inside = after[..close].split([';', ',']).next().unwrap_or("").trim();
        let before = &text[..offset + open];
        if let Some(short) = short_form(inside)
            && let Some(long) = long_form(&short, before)
        {
            let stems = stems(&long);
            if stems.len() >= 2 {
                out.push((short.to_lowercase(), stems));
            }
        }
        offset += open + 1;
        rest = &text[offset..];
    }
    out
}

/// "LLMs" → "LLM"; anything that does not look like an acronym → None.
fn short_form(inside: &str) -> Option<String> {
    let chars: Vec<char> = inside.chars().collect();
    if !(2..=10).contains(&chars.len())
        || !chars[0].is_alphanumeric()
        || chars.iter().any(|c| c.is_whitespace())
    {
        return None;
    }
    let upper = chars.iter().filter(|c| c.is_uppercase()).count();
    if upper < 2 || !chars.iter().any(|c| c.is_alphabetic()) {
        return None;
    }
    let mut s: String = chars.iter().collect();
    if s.len() > 2 && s.ends_with('s') && s[..s.len() - 1].ends_with(|c: char| c.is_uppercase()) {
        s.pop();
    }
    Some(s)
}

/// The words before a parenthesis that `short` abbreviates, if any.
fn long_form(short: &str, before: &str) -> Option<String> {
    let letters: Vec<char> =
        short.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    let window: Vec<&str> = before.split_whitespace().collect();
    let take = (letters.len() + 5).min(letters.len() * 2).min(window.len());
    let candidate = window[window.len() - take..].join(" ");
    let long: Vec<char> = candidate.chars().flat_map(char::to_lowercase).collect();
    if long.is_empty() {
        return None;
    }
    let mut l = long.len() as isize - 1;
    for (si, &c) in letters.iter().enumerate().rev() {
        // The first letter must start a word; the others may sit anywhere.
        while l >= 0
            && (long[l as usize] != c
                || (si == 0 && l > 0 && long[l as usize - 1].is_alphanumeric()))
        {
            l -= 1;
        }
        if l < 0 {
            return None;
        }
        l -= 1;
    }
    let start = (l + 1) as usize;
    let found: String = long[start..].iter().collect();
    let found = found.trim_end_matches(|c: char| !c.is_alphanumeric()).to_string();
    let words = found.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).count();
    (words >= 2 && words <= letters.len() + 2).then_some(found)
}

/// Stems in more than about a third of all papers ("model", "we") describe nothing.
pub const MIN_IDF: f64 = 1.0;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        acronyms_in(text).into_iter().map(|(s, l)| (s, l.join(" "))).collect()
    }

    #[test]
    fn acronyms_are_learned_from_their_definitions() {
        assert_eq!(
            pairs("We study reinforcement learning from human feedback (RLHF) at scale."),
            [("rlhf".to_string(), "reinforc learn from human feedback".to_string())]
        );
        assert_eq!(
            pairs("Large language models (LLMs) and vision-language models (VLMs) differ."),
            [
                ("llm".to_string(), "larg languag model".to_string()),
                ("vlm".to_string(), "vision languag model".to_string())
            ]
        );
        assert_eq!(pairs("a sparse Mixture-of-Experts (MoE) layer")[0].1, "mixtur of expert");
        assert_eq!(pairs("spiking neural networks (SNNs)")[0].0, "snn");
    }

    #[test]
    fn parentheses_that_are_not_acronyms_teach_nothing() {
        assert!(pairs("results (see Table 2) and more (e.g. this)").is_empty());
        assert!(pairs("a model (GPT) trained").is_empty(), "letters must match the words");
        assert!(pairs("(RLHF) at the start").is_empty());
    }

    #[test]
    fn variants_go_both_ways_and_idf_favours_rare_words() {
        let papers: Vec<PaperTerms> = vec![
            read_paper("RLHF", "reinforcement learning from human feedback (RLHF) models", &[]),
            read_paper("Other", "language models are models", &[]),
            read_paper("Third", "models of vision", &[]),
        ];
        let lex = Lexicon::from_papers(&papers);
        assert_eq!(lex.docs, 3);
        let variants = lex.variants();
        assert_eq!(variants[&stems("RLHF")], [stems("reinforcement learning from human feedback")]);
        assert_eq!(
            variants[&stems("reinforcement learning from human feedback")],
            [vec!["rlhf".to_string()]]
        );
        assert!(lex.idf("feedback") > lex.idf("model"));
        assert!(lex.idf("never-seen") >= lex.idf("feedback"));
    }
}
