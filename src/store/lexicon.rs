//! The lexicon learned from the stored papers: document frequencies and acronyms.

use std::collections::{BTreeMap, HashMap};

use sqlx::{PgConnection, PgPool};

use crate::domain::lexicon::{Lexicon, PaperTerms, read_paper};

/// Papers read per transaction.
const CHUNK: i64 = 500;
/// Acronym definitions loaded for ranking, the most often seen first.
const ACRONYMS: i64 = 20_000;

/// Counts the words and acronyms of every paper the lexicon has not read yet (papers
/// stored before the lexicon existed; ingest counts new papers as it stores them).
/// Returns how many papers it read. Two processes may run it at once: each takes
/// different papers.
pub async fn index_new(db: &PgPool) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let rows = sqlx::query!(
            "SELECT arxiv_id, title, abstract, ai_keywords FROM papers
             WHERE lexicon_at IS NULL ORDER BY arxiv_id LIMIT $1 FOR UPDATE SKIP LOCKED",
            CHUNK,
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let read: Vec<PaperTerms> =
            rows.iter().map(|r| read_paper(&r.title, &r.r#abstract, &r.ai_keywords)).collect();
        count(&mut tx, &read).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.arxiv_id.clone()).collect();
        sqlx::query!("UPDATE papers SET lexicon_at = now() WHERE arxiv_id = ANY($1)", &ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        total += rows.len() as u64;
    }
}

/// Adds papers' words and acronym definitions to the counts. Ingest calls it in the
/// transaction that inserts the papers (which are stored as read).
pub async fn count(conn: &mut PgConnection, papers: &[PaperTerms]) -> sqlx::Result<()> {
    if papers.is_empty() {
        return Ok(());
    }
    // Sorted, so concurrent runs lock shared rows in the same order.
    let mut df: BTreeMap<&str, i32> = BTreeMap::new();
    let mut pairs: BTreeMap<(&str, &str), i32> = BTreeMap::new();
    for p in papers {
        for t in &p.terms {
            *df.entry(t).or_default() += 1;
        }
        for (short, long) in &p.acronyms {
            *pairs.entry((short, long)).or_default() += 1;
        }
    }
    let (terms, counts): (Vec<&str>, Vec<i32>) = df.into_iter().unzip();
    sqlx::query!(
        "INSERT INTO lexicon_terms (term, df) SELECT * FROM unnest($1::text[], $2::int[])
         ON CONFLICT (term) DO UPDATE SET df = lexicon_terms.df + EXCLUDED.df",
        &terms as &[&str],
        &counts,
    )
    .execute(&mut *conn)
    .await?;
    let mut shorts = Vec::new();
    let mut longs = Vec::new();
    let mut seen = Vec::new();
    for ((s, l), n) in pairs {
        shorts.push(s);
        longs.push(l);
        seen.push(n);
    }
    sqlx::query!(
        "INSERT INTO acronyms (short, long_form, papers)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
         ON CONFLICT (short, long_form) DO UPDATE SET papers = acronyms.papers + EXCLUDED.papers",
        &shorts as &[&str],
        &longs as &[&str],
        &seen,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The lexicon as far as these stems need it: their frequencies, the number of papers
/// read, and the acronyms.
pub async fn load(db: &PgPool, stems: &[String]) -> sqlx::Result<Lexicon> {
    let mut lexicon = Lexicon {
        docs: documents(db).await?,
        df: frequencies(db, stems).await?.into_iter().collect(),
        acronyms: HashMap::new(),
    };
    lexicon.add_acronyms(acronyms(db).await?);
    Ok(lexicon)
}

/// The acronym definitions the papers taught, the most often seen first: (short form,
/// long form as stems joined by spaces, papers).
pub async fn acronyms(db: &PgPool) -> sqlx::Result<Vec<(String, String, u32)>> {
    let rows = sqlx::query!(
        "SELECT short, long_form, papers FROM acronyms ORDER BY papers DESC, short LIMIT $1",
        ACRONYMS,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.short, r.long_form, r.papers.max(0) as u32)).collect())
}

/// The number of papers the lexicon has read.
pub async fn documents(db: &PgPool) -> sqlx::Result<u32> {
    let n =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM papers WHERE lexicon_at IS NOT NULL"#)
            .fetch_one(db)
            .await?;
    Ok(n.clamp(0, u32::MAX as i64) as u32)
}

/// The document frequencies of these stems (those never seen are left out).
pub async fn frequencies(db: &PgPool, stems: &[String]) -> sqlx::Result<Vec<(String, u32)>> {
    let rows = sqlx::query!("SELECT term, df FROM lexicon_terms WHERE term = ANY($1)", stems)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.term, r.df.max(0) as u32)).collect())
}
