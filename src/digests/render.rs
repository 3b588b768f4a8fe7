//! The digest email: one HTML and one text template over the ranked picks.

use askama::Template;

use super::ranking::{Candidate, CandidateSet, Pick};
use crate::domain::Edition;
use crate::domain::Frequency;
use crate::domain::{arxiv_url, huggingface_url, short_authors};
use crate::mail::{Draft, Subject};

/// A paper as the email (and the preview) shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DigestItem {
    pub arxiv_id: String,
    pub title: String,
    pub url: String,
    pub arxiv_url: String,
    pub authors: String,
    pub upvotes: i32,
    pub summary: String,
    pub code_url: Option<String>,
    pub code_stars: Option<i32>,
    pub project_url: Option<String>,
    pub why: String,
}

/// Links every digest carries.
pub struct DigestLinks {
    pub preferences: String,
    pub unsubscribe: String,
    /// The subscriber's rating links up to the paper: `{rate}{arxiv_id}/up`.
    pub rate: String,
    /// This digest's web copy (`/d/{token}`).
    pub web: String,
    /// A paper's public page with its similar papers, up to the id: `{base}/papers/`.
    pub similar: String,
}

impl DigestLinks {
    pub fn for_delivery(
        links: &crate::domain::Links,
        subscriber: &uuid::Uuid,
        delivery: i64,
    ) -> Self {
        Self {
            preferences: links.preferences(subscriber),
            unsubscribe: links.unsubscribe(subscriber),
            rate: links.rate_base(subscriber),
            web: links.copy(delivery),
            similar: links.papers_base(),
        }
    }
}

const MAX_SUMMARY_CHARS: usize = 320;
const SHOWN_AUTHORS: usize = 5;

/// The AI summary when there is one, else the abstract's first sentences.
fn summary(ai_summary: Option<&str>, abstract_text: &str) -> String {
    if let Some(s) = ai_summary.filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    let mut out = String::new();
    for sentence in abstract_text.split_inclusive(". ") {
        if !out.is_empty() && out.chars().count() + sentence.chars().count() > MAX_SUMMARY_CHARS {
            break;
        }
        out.push_str(sentence);
        if out.matches(". ").count() >= 2 {
            break;
        }
    }
    if out.chars().count() > MAX_SUMMARY_CHARS {
        out = out.chars().take(MAX_SUMMARY_CHARS - 1).collect::<String>().trim_end().to_string()
            + "…";
    }
    out.trim().to_string()
}

pub fn items(set: &CandidateSet, picks: &[Pick]) -> Vec<DigestItem> {
    picks
        .iter()
        .map(|pick| {
            let c = &set.candidates()[pick.index];
            let why =
                pick.reasons.iter().map(|r| r.describe(c.upvotes)).collect::<Vec<_>>().join("; ");
            item(c, why)
        })
        .collect()
}

/// One paper as a digest shows it, with its why-line.
pub fn item(c: &Candidate, why: String) -> DigestItem {
    let arxiv_url = arxiv_url(&c.arxiv_id);
    DigestItem {
        arxiv_id: c.arxiv_id.clone(),
        title: c.title.clone(),
        url: if c.on_huggingface { huggingface_url(&c.arxiv_id) } else { arxiv_url.clone() },
        arxiv_url,
        authors: short_authors(&c.authors, SHOWN_AUTHORS),
        upvotes: c.upvotes,
        summary: summary(c.ai_summary.as_deref(), &c.abstract_text),
        code_url: c.github_repo.clone(),
        code_stars: c.github_stars,
        project_url: c.project_page.clone(),
        why,
    }
}

/// The heading and intro line of a digest (email, web copy).
pub fn heading(edition: &Edition, papers: usize) -> (String, String) {
    let heading = match edition.frequency {
        Frequency::Daily | Frequency::Feed => {
            format!("Your papers for {}", edition.day.format("%A, %B %-d, %Y"))
        }
        Frequency::Weekly => format!("Your week in papers: {}", edition.title()),
    };
    let intro = match papers {
        1 => "One paper picked for you, with the reason it is here.".to_string(),
        n => format!("{n} papers picked for you, each with the reason it is here."),
    };
    (heading, intro)
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct DigestHtml<'a> {
    heading: &'a str,
    intro: &'a str,
    items: &'a [DigestItem],
    links: &'a DigestLinks,
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct DigestText<'a> {
    heading: &'a str,
    intro: &'a str,
    items: &'a [DigestItem],
    links: &'a DigestLinks,
}

/// The subject names the day and the top paper.
pub fn subject(edition: &Edition, items: &[DigestItem]) -> String {
    let kind = match edition.frequency {
        Frequency::Daily | Frequency::Feed => "paperboy",
        Frequency::Weekly => "paperboy weekly",
    };
    let top = items.first().map(|i| i.title.as_str()).unwrap_or("no papers");
    let top: String = if top.chars().count() > 90 {
        top.chars().take(89).collect::<String>() + "…"
    } else {
        top.into()
    };
    let edition = edition.title();
    Subject::Digest { kind, edition: &edition, top: &top, more: items.len().saturating_sub(1) }
        .line()
}

pub fn render(
    edition: &Edition,
    items: &[DigestItem],
    links: &DigestLinks,
) -> askama::Result<Draft> {
    let (heading, intro) = heading(edition, items.len());
    Ok(Draft {
        subject: subject(edition, items),
        text: DigestText { heading: &heading, intro: &intro, items, links }.render()?,
        html: DigestHtml { heading: &heading, intro: &intro, items, links }.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_prefer_the_ai_summary_then_the_first_sentences() {
        assert_eq!(summary(Some("Short."), "Long abstract."), "Short.");
        assert_eq!(summary(None, "One. Two. Three. Four."), "One. Two.");
        let long = "word ".repeat(200);
        let s = summary(None, &long);
        assert!(s.chars().count() <= MAX_SUMMARY_CHARS && s.ends_with('…'));
    }
}
