//! A reader's reference library: a BibTeX export (Zotero, Mendeley, JabRef) uploaded on the
//! preferences page. Entries with an arXiv id become examples ("papers like these"); the
//! others are liked as they are, by their title and abstract. An upload replaces the last
//! one, whole or not at all.

use biblatex::{Bibliography, ChunksExt, Entry};
use uuid::Uuid;

use crate::domain::{ArxivId, normalize_whitespace};
use crate::ratings::examples::Examples;
use crate::store::examples::{self as stored_examples, Added, Source};
use crate::store::library::{self as stored, NewEntry};

/// The largest file taken.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// What a reader is told of a file over [`MAX_BYTES`].
pub const TOO_LARGE: &str = "That file is larger than 5 MB; nothing was changed.";
/// The most entries taken.
pub const MAX_ENTRIES: usize = 2000;
/// Longest title and abstract kept of an entry.
const MAX_TITLE: usize = 500;
const MAX_ABSTRACT: usize = 5000;

/// A library file, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Library {
    pub entries: usize,
    /// Entries with an arXiv id, as ids (each once).
    pub arxiv: Vec<String>,
    /// Entries without one, liked by their text.
    pub direct: Vec<NewEntry>,
    /// (citation key, why it was not used).
    pub skipped: Vec<(String, String)>,
}

/// Reads a BibTeX file. A file that does not parse, or has too many entries, is an error
/// with a message for the reader; an entry that cannot be used is skipped with its reason.
pub fn read(src: &str) -> Result<Library, String> {
    if src.len() > MAX_BYTES {
        return Err(TOO_LARGE.into());
    }
    let bibliography = Bibliography::parse(src).map_err(|e| {
        let line = src[..e.span.start.min(src.len())].lines().count().max(1);
        format!("That file is not valid BibTeX ({} on line {line}); nothing was changed.", e.kind)
    })?;
    if bibliography.len() > MAX_ENTRIES {
        return Err(format!(
            "That file has {} entries; at most {MAX_ENTRIES} are taken. Nothing was changed.",
            bibliography.len()
        ));
    }
    if bibliography.is_empty() {
        return Err("That file has no BibTeX entries; nothing was changed.".into());
    }
    let mut library = Library { entries: bibliography.len(), ..Library::default() };
    for entry in bibliography.iter() {
        let title = field(entry, "title");
        match arxiv_id(entry) {
            Some(id) if library.arxiv.contains(&id) => {
                library.skipped.push((entry.key.clone(), "the same arXiv paper again".into()))
            }
            Some(id) => library.arxiv.push(id),
            None if title.is_empty() => {
                library.skipped.push((entry.key.clone(), "no title and no arXiv id".into()))
            }
            None => library.direct.push(NewEntry {
                cite_key: entry.key.chars().take(200).collect(),
                title: title.chars().take(MAX_TITLE).collect(),
                abstract_text: field(entry, "abstract").chars().take(MAX_ABSTRACT).collect(),
            }),
        }
    }
    Ok(library)
}

/// A field's text without TeX braces, on one line (empty when absent).
fn field(entry: &Entry, name: &str) -> String {
    entry.get(name).map(|c| normalize_whitespace(&c.format_verbatim())).unwrap_or_default()
}

/// The arXiv id an entry names: `eprint` (arXiv's own export, BibLaTeX), `arxivId`
/// (Mendeley), an arXiv `url` or `doi`, or "arXiv:…" in the journal or note (Google
/// Scholar).
fn arxiv_id(entry: &Entry) -> Option<String> {
    let prefix = field(entry, "archiveprefix") + &field(entry, "eprinttype");
    let eprint = field(entry, "eprint");
    let from_eprint = (prefix.is_empty() || prefix.eq_ignore_ascii_case("arxiv"))
        .then(|| ArxivId::from_reference(&eprint))
        .flatten();
    let in_text = |name: &str| {
        let text = field(entry, name);
        let at = text.to_ascii_lowercase().find("arxiv:")?;
        ArxivId::from_reference(text[at..].split_whitespace().next()?)
    };
    from_eprint
        .or_else(|| ArxivId::from_reference(&field(entry, "arxivid")))
        .or_else(|| {
            ArxivId::from_reference(&field(entry, "url"))
                .filter(|_| is_arxiv_link(&field(entry, "url")))
        })
        .or_else(|| {
            ArxivId::from_reference(&field(entry, "doi"))
                .filter(|_| field(entry, "doi").to_ascii_lowercase().contains("arxiv"))
        })
        .or_else(|| in_text("journal"))
        .or_else(|| in_text("note"))
        .map(|id| id.as_str().to_string())
}

/// A URL on arXiv or Hugging Face papers (a bare id in `url` is not a link).
fn is_arxiv_link(url: &str) -> bool {
    let url = url.to_ascii_lowercase();
    url.contains("arxiv.org/") || url.contains("huggingface.co/papers/")
}

/// Replaces a subscriber's library with one read from `file_name`: its arXiv entries become
/// examples (fetched when we do not have them), the others wait for their vectors. The
/// taste is retrained at once (the entries' words count before their vectors do).
pub async fn upload(
    examples: &Examples,
    subscriber: Uuid,
    topics: &[String],
    file_name: &str,
    library: &Library,
) -> sqlx::Result<Added> {
    let mut tx = examples.trainer.db.begin().await?;
    let entries = i32::try_from(library.entries).unwrap_or(i32::MAX);
    let name: String = file_name.chars().take(200).collect();
    stored::replace(&mut tx, subscriber, &name, entries, &library.skipped, &library.direct).await?;
    let added = stored_examples::add(&mut tx, subscriber, &library.arxiv, Source::Library).await?;
    tx.commit().await?;
    examples.trainer.retrain(subscriber, topics).await?;
    if !added.waiting.is_empty() {
        examples.wake.notify_one();
    }
    Ok(added)
}

/// Removes a subscriber's library and what it added, and retrains their taste.
pub async fn remove(examples: &Examples, subscriber: Uuid, topics: &[String]) -> sqlx::Result<()> {
    let mut conn = examples.trainer.db.acquire().await?;
    stored::remove(&mut conn, subscriber).await?;
    drop(conn);
    examples.trainer.retrain(subscriber, topics).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_arxiv_ids_and_without() {
        let bib = r#"
@article{vaswani2017,
  title = {Attention Is All You Need},
  author = {Vaswani, Ashish and others},
  eprint = {1706.03762},
  archivePrefix = {arXiv},
}
@misc{mendeley, title = {{Thinking with Video}}, arxivId = {2511.04570}}
@article{scholar, title = {Something}, journal = {arXiv preprint arXiv:2511.04460}}
@online{link, title = {Linked}, url = {https://arxiv.org/abs/2511.03773v2}}
@article{doi, title = {By DOI}, doi = {10.48550/arXiv.2511.04670}}
@book{knuth, title = {The {\TeX}book}, abstract = {A book
  about typesetting.}}
@misc{notitle, author = {Nobody}}
@misc{again, title = {Again}, eprint = {1706.03762}}
@article{other, title = {Other DOI}, doi = {10.1000/182}, url = {https://example.com/1706.03762}}
"#;
        let library = read(bib).unwrap();
        assert_eq!(library.entries, 9);
        assert_eq!(
            library.arxiv,
            ["1706.03762", "2511.04570", "2511.04460", "2511.03773", "2511.04670"]
        );
        let titles: Vec<&str> = library.direct.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles.len(), 2, "{titles:?}");
        assert!(titles[0].contains("book"), "{titles:?}");
        assert_eq!(library.direct[0].abstract_text, "A book about typesetting.");
        assert_eq!(titles[1], "Other DOI");
        let skipped: Vec<&str> = library.skipped.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(skipped, ["notitle", "again"]);
    }

    #[test]
    fn a_malformed_file_says_where() {
        let err = read("@article{a, title = {ok}}\n@article{b, title = {unclosed\n").unwrap_err();
        assert!(err.contains("not valid BibTeX") && err.contains("line"), "{err}");
        assert!(read("").unwrap_err().contains("no BibTeX entries"));
        let many: String =
            (0..=MAX_ENTRIES).map(|i| format!("@misc{{k{i}, title = {{T{i}}}}}\n")).collect();
        assert!(read(&many).unwrap_err().contains("at most 2000"));
    }
}
