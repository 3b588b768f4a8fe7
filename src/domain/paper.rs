//! A research paper as both sources describe it, keyed by its arXiv id.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// An arXiv identifier without version: `2511.03276` or old-style `cs/0112017`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArxivId(String);

impl ArxivId {
    /// Parses an id, a versioned id (`2511.03276v2`, version returned separately), or an
    /// `oai:arXiv.org:` guid.
    pub fn parse_versioned(raw: &str) -> Option<(Self, Option<i32>)> {
        let raw = raw.trim();
        let raw = raw.strip_prefix("oai:arXiv.org:").unwrap_or(raw);
        let raw = raw.strip_prefix("arXiv:").unwrap_or(raw);
        let (id, version) = match raw.rfind('v') {
            Some(i)
                if i > 0
                    && raw[i + 1..].chars().all(|c| c.is_ascii_digit())
                    && i + 1 < raw.len() =>
            {
                (&raw[..i], raw[i + 1..].parse().ok())
            }
            _ => (raw, None),
        };
        Self::valid(id).then(|| (Self(id.to_string()), version))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::parse_versioned(raw).map(|(id, _)| id)
    }

    fn valid(id: &str) -> bool {
        if let Some((yymm, num)) = id.split_once('.') {
            return yymm.len() == 4
                && yymm.bytes().all(|b| b.is_ascii_digit())
                && (4..=5).contains(&num.len())
                && num.bytes().all(|b| b.is_ascii_digit());
        }
        // Old style: archive(.subject)/YYMMNNN
        match id.split_once('/') {
            Some((archive, num)) => {
                archive.starts_with(|c: char| c.is_ascii_alphabetic())
                    && archive.len() <= 16
                    && archive.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'.')
                    && num.len() == 7
                    && num.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The paper a reader means by an id (`2511.04570`, `arXiv:2511.04570v2`), a link to
    /// it on arXiv (`arxiv.org/abs|pdf|html/…`) or Hugging Face (`huggingface.co/papers/…`),
    /// or its arXiv DOI (`10.48550/arXiv.2511.04570`).
    pub fn from_reference(raw: &str) -> Option<Self> {
        let raw = raw.trim().trim_end_matches(['/', '.', ',', ';']);
        let lower = raw.to_ascii_lowercase();
        let rest = ["https://", "http://"]
            .iter()
            .find_map(|s| lower.starts_with(s).then(|| &raw[s.len()..]))
            .unwrap_or(raw);
        let rest = rest.strip_prefix("www.").unwrap_or(rest);
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let path = ["arxiv.org/abs/", "arxiv.org/pdf/", "arxiv.org/html/", "export.arxiv.org/abs/"]
            .iter()
            .chain(&["huggingface.co/papers/", "doi.org/10.48550/arxiv.", "10.48550/arxiv."])
            .find_map(|prefix| {
                rest.get(..prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    .then(|| &rest[prefix.len()..])
            });
        let id = match path {
            Some(p) => p.strip_suffix(".pdf").unwrap_or(p),
            // A link elsewhere is not an id.
            None if rest.split_once('/').is_some_and(|(host, _)| host.contains('.')) => {
                return None;
            }
            None => rest,
        };
        let id = match id.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("arxiv:") => &id[6..],
            _ => id,
        };
        Self::parse(id)
    }
}

impl fmt::Display for ArxivId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Folds hard line breaks and runs of spaces into single spaces.
pub fn normalize_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The paper's abstract page on arXiv.
pub fn arxiv_url(arxiv_id: impl fmt::Display) -> String {
    format!("https://arxiv.org/abs/{arxiv_id}")
}

/// The paper's page on Hugging Face (papers featured in Daily Papers have one).
pub fn huggingface_url(arxiv_id: impl fmt::Display) -> String {
    format!("https://huggingface.co/papers/{arxiv_id}")
}

/// "A, B, C et al.": the first `shown` authors, and "et al." when there are more.
pub fn short_authors(authors: &[String], shown: usize) -> String {
    let mut s = authors.iter().take(shown).map(String::as_str).collect::<Vec<_>>().join(", ");
    if authors.len() > shown {
        s.push_str(" et al.");
    }
    s
}

/// What Hugging Face Daily Papers says about a paper on a featured day.
#[derive(Clone, Debug, PartialEq)]
pub struct FeaturedPaper {
    pub arxiv_id: ArxivId,
    pub title: String,
    pub abstract_text: String,
    pub authors: Vec<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub featured_on: NaiveDate,
    pub upvotes: i32,
    pub num_comments: i32,
    pub ai_summary: Option<String>,
    pub ai_keywords: Vec<String>,
    pub github_repo: Option<String>,
    pub github_stars: Option<i32>,
    pub project_page: Option<String>,
    pub organization: Option<String>,
    pub thumbnail: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// What an arXiv announcement says about a paper.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnouncedPaper {
    pub arxiv_id: ArxivId,
    pub version: Option<i32>,
    pub title: String,
    pub abstract_text: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    /// `new`, `cross`, `replace` or `replace-cross`.
    pub announce_type: String,
    pub announced_on: NaiveDate,
}

/// A paper as arXiv's query API describes it (fetched because a reader named it).
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedPaper {
    pub arxiv_id: ArxivId,
    pub version: Option<i32>,
    pub title: String,
    pub abstract_text: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A paper that may go into an edition, with what the email shows.
#[derive(Clone, Debug, Default, PartialEq)]
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

impl From<&FeaturedPaper> for Candidate {
    fn from(p: &FeaturedPaper) -> Self {
        Self {
            arxiv_id: p.arxiv_id.to_string(),
            title: p.title.clone(),
            abstract_text: p.abstract_text.clone(),
            authors: p.authors.clone(),
            categories: Vec::new(),
            ai_keywords: p.ai_keywords.clone(),
            ai_summary: p.ai_summary.clone(),
            upvotes: p.upvotes,
            github_repo: p.github_repo.clone(),
            github_stars: p.github_stars,
            project_page: p.project_page.clone(),
            on_huggingface: true,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_a_reader_pastes() {
        for (raw, id) in [
            ("2511.04570", "2511.04570"),
            (" arXiv:2511.04570v2 ", "2511.04570"),
            ("https://arxiv.org/abs/2511.04570", "2511.04570"),
            ("http://arxiv.org/pdf/2511.04570v1.pdf", "2511.04570"),
            ("arxiv.org/pdf/2511.04570", "2511.04570"),
            ("https://www.arxiv.org/abs/2511.04570v3?context=cs", "2511.04570"),
            ("https://huggingface.co/papers/2511.04570", "2511.04570"),
            ("https://doi.org/10.48550/arXiv.2511.04570", "2511.04570"),
            ("10.48550/ARXIV.2511.04570", "2511.04570"),
            ("https://arxiv.org/abs/cs/0112017", "cs/0112017"),
            ("cs/0112017v1", "cs/0112017"),
        ] {
            assert_eq!(
                ArxivId::from_reference(raw).as_ref().map(ArxivId::as_str),
                Some(id),
                "{raw}"
            );
        }
        for bad in [
            "",
            "attention is all you need",
            "https://example.com/2511.04570",
            "2511",
            "../1234567",
        ] {
            assert_eq!(ArxivId::from_reference(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_old_style_archive_starts_with_a_letter() {
        assert!(ArxivId::parse("cs/0112017").is_some());
        for bad in ["../1234567", "./1234567", "-x/1234567"] {
            assert_eq!(ArxivId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_with_versions_and_prefixes() {
        assert_eq!(
            ArxivId::parse_versioned("oai:arXiv.org:2511.03276v2"),
            Some((ArxivId("2511.03276".into()), Some(2)))
        );
        assert_eq!(
            ArxivId::parse_versioned("2511.0327"),
            Some((ArxivId("2511.0327".into()), None))
        );
        assert_eq!(ArxivId::parse("arXiv:hep-th/9901001v1").unwrap().as_str(), "hep-th/9901001");
        for bad in [
            "",
            "v2",
            "2511.03276v",
            "25110.3276",
            "abc",
            "2511.032",
            "../etc/passwd",
            "2511.03276 OR 1=1",
        ] {
            assert!(ArxivId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn whitespace_is_folded() {
        assert_eq!(
            normalize_whitespace("Under strictly\ncontrolled  pre-training\n"),
            "Under strictly controlled pre-training"
        );
    }
}
