//! "Papers like these": a reader's examples (ratings whose source says where they came
//! from, and the ones still waiting for their paper), and the queue of arXiv lookups that
//! fetches the papers we do not have.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Where an example came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Pasted on the sign-up form or the preferences page, or added from a web copy.
    Example,
    /// Found in the reader's BibTeX library.
    Library,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Example => "example",
            Self::Library => "library",
        }
    }
}

/// What adding examples did with each id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// Stored papers, now rated up.
    pub rated: Vec<String>,
    /// Papers we do not have: queued for arXiv.
    pub waiting: Vec<String>,
    /// arXiv said it has no such paper (asked before).
    pub missing: Vec<String>,
}

/// Adds papers as a subscriber's examples: a stored paper is rated up at once (a paste
/// overrides an earlier rating; a library leaves the reader's own rating as it is), one we
/// do not have waits for its arXiv lookup, queued unless arXiv said before that it has no
/// such paper.
pub async fn add(
    conn: &mut PgConnection,
    subscriber: Uuid,
    ids: &[String],
    source: Source,
) -> sqlx::Result<Added> {
    if ids.is_empty() {
        return Ok(Added::default());
    }
    let rated = sqlx::query_scalar!(
        "WITH stored AS (SELECT arxiv_id FROM papers WHERE arxiv_id = ANY($2)),
              rated AS (
                  INSERT INTO ratings (subscriber_id, arxiv_id, rating, source)
                  SELECT $1, arxiv_id, 1, $3 FROM stored
                  ON CONFLICT (subscriber_id, arxiv_id) DO UPDATE
                  SET rating = 1, rated_at = now(), source = EXCLUDED.source
                  WHERE $3 = 'example'
              )
         SELECT arxiv_id FROM stored",
        subscriber,
        ids,
        source.as_str(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let unknown: Vec<String> = ids.iter().filter(|id| !rated.contains(id)).cloned().collect();
    let missing = sqlx::query_scalar!(
        "SELECT arxiv_id FROM arxiv_lookups WHERE arxiv_id = ANY($1) AND state = 'missing'",
        &unknown,
    )
    .fetch_all(&mut *conn)
    .await?;
    let waiting: Vec<String> = unknown.into_iter().filter(|id| !missing.contains(id)).collect();
    sqlx::query!(
        "WITH wanted AS (
             INSERT INTO wanted_examples (subscriber_id, arxiv_id, source)
             SELECT $1, id, $3 FROM unnest($2::text[]) AS id
             ON CONFLICT (subscriber_id, arxiv_id) DO NOTHING
         )
         -- A paper found before but deleted since is looked up again.
         INSERT INTO arxiv_lookups (arxiv_id) SELECT id FROM unnest($2::text[]) AS id
         ON CONFLICT (arxiv_id) DO UPDATE SET state = 'queued', next_try_at = now()
         WHERE arxiv_lookups.state = 'found'",
        subscriber,
        &waiting,
        source.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    let order = |v: Vec<String>| -> Vec<String> {
        ids.iter().filter(|id| v.contains(id)).cloned().collect()
    };
    Ok(Added { rated: order(rated), waiting, missing: order(missing) })
}

/// One of a subscriber's examples as their preferences page lists it.
#[derive(Clone, Debug)]
pub struct ExampleRow {
    pub arxiv_id: String,
    /// The paper's title once stored.
    pub title: Option<String>,
    /// `liked` (stored and rated up), `queued` (waiting for arXiv) or `missing`.
    pub state: String,
    /// `example` or `library`.
    pub source: String,
    pub added_at: DateTime<Utc>,
}

/// A subscriber's examples, latest first: liked ones, then the ones still waiting.
pub async fn of_subscriber(
    db: &PgPool,
    subscriber: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<ExampleRow>> {
    sqlx::query_as!(
        ExampleRow,
        r#"SELECT arxiv_id AS "arxiv_id!", title, state AS "state!", source AS "source!",
                  added_at AS "added_at!"
           FROM (SELECT r.arxiv_id, p.title, 'liked' AS state, r.source, r.rated_at AS added_at
                 FROM ratings r JOIN papers p USING (arxiv_id)
                 WHERE r.subscriber_id = $1 AND r.source <> 'digest' AND r.rating = 1
                 UNION ALL
                 SELECT w.arxiv_id, NULL, coalesce(l.state, 'queued'), w.source, w.added_at
                 FROM wanted_examples w LEFT JOIN arxiv_lookups l USING (arxiv_id)
                 WHERE w.subscriber_id = $1) e
           ORDER BY state = 'liked', added_at DESC, arxiv_id
           LIMIT $2"#,
        subscriber,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Forgets an example still waiting for its paper. False when there was none.
pub async fn forget_waiting(db: &PgPool, subscriber: Uuid, arxiv_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM wanted_examples WHERE subscriber_id = $1 AND arxiv_id = $2",
        subscriber,
        arxiv_id,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Takes arXiv's turn if it is free: the caller may make one request, and must end the
/// turn after it. `Err(at)`: another request runs, or the last ended less than the gap ago;
/// ask again at `at`. A turn not ended (a process killed) frees itself after `hold`.
pub async fn take_turn(
    db: &PgPool,
    hold: std::time::Duration,
) -> sqlx::Result<Result<(), DateTime<Utc>>> {
    let taken = sqlx::query_scalar!(
        "UPDATE arxiv_api_turn SET next_at = now() + make_interval(secs => $1) WHERE next_at <= now() RETURNING true",
        hold.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    if taken.is_some() {
        return Ok(Ok(()));
    }
    let at = sqlx::query_scalar!("SELECT next_at FROM arxiv_api_turn").fetch_one(db).await?;
    Ok(Err(at))
}

/// Ends this process's turn: the next request may start `gap` from now.
pub async fn end_turn(db: &PgPool, gap: std::time::Duration) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE arxiv_api_turn SET next_at = now() + make_interval(secs => $1)",
        gap.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// When the next queued lookup is due, if any is queued.
pub async fn next_lookup_due(db: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!("SELECT min(next_try_at) FROM arxiv_lookups WHERE state = 'queued'")
        .fetch_one(db)
        .await
}

/// Claims up to `n` due lookups for one request; a claim not settled within `lease` (a
/// process killed mid-request) falls due again.
pub async fn claim_lookups(
    db: &PgPool,
    n: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "UPDATE arxiv_lookups SET attempts = attempts + 1, next_try_at = now() + make_interval(secs => $2)
         WHERE arxiv_id IN (SELECT arxiv_id FROM arxiv_lookups
                            WHERE state = 'queued' AND next_try_at <= now()
                            ORDER BY next_try_at, arxiv_id LIMIT $1
                            FOR UPDATE SKIP LOCKED)
         RETURNING arxiv_id",
        n,
        lease.as_secs_f64(),
    )
    .fetch_all(db)
    .await
}

/// A request for these lookups failed: each is tried again later, later after each
/// failure (1, 4, 9 … minutes, at most an hour).
pub async fn lookups_failed(db: &PgPool, ids: &[String], error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE arxiv_lookups
         SET last_error = $2,
             next_try_at = now() + least(attempts * attempts, 60) * interval '1 minute'
         WHERE arxiv_id = ANY($1) AND state = 'queued'",
        ids,
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Settles lookups whose answer came (the found papers stored in the same transaction):
/// found ones turn their waiting examples into ratings, missing ones stay listed to their
/// readers with the reason. Returns the subscribers whose examples became ratings.
pub async fn settle_lookups(
    conn: &mut PgConnection,
    found: &[String],
    missing: &[String],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query!(
        "UPDATE arxiv_lookups
         SET state = CASE WHEN arxiv_id = ANY($1) THEN 'found' ELSE 'missing' END,
             done_at = now(), last_error = NULL
         WHERE arxiv_id = ANY($1) OR arxiv_id = ANY($2)",
        found,
        missing,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!(
        r#"WITH w AS (
               DELETE FROM wanted_examples WHERE arxiv_id = ANY($1) RETURNING *
           ), rated AS (
               INSERT INTO ratings (subscriber_id, arxiv_id, rating, source, rated_at)
               SELECT subscriber_id, arxiv_id, 1, source, added_at FROM w
               ON CONFLICT (subscriber_id, arxiv_id) DO NOTHING
           )
           SELECT DISTINCT subscriber_id AS "subscriber_id!" FROM w"#,
        found,
    )
    .fetch_all(conn)
    .await
}
