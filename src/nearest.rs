//! The archive's paper vectors in this process's memory, for similar papers and search by
//! meaning. Postgres keeps the vectors; each `serve` process loads its own copy in the
//! background at start and tops it up with what any process embedded since, so search
//! scales out with instances. A query is an exact scan: every stored vector is compared.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::store::vectors;

/// Vectors read per query while loading.
const PAGE: i64 = 5_000;
/// A refresh reads again what was embedded this long before the newest vector it has seen:
/// a transaction that committed late may carry an older `embedded_at`.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(120);

/// The vectors of the archive's papers under one model.
#[derive(Default)]
pub struct Archive {
    state: RwLock<Vectors>,
}

#[derive(Default)]
struct Vectors {
    model: String,
    dim: usize,
    ids: Vec<String>,
    days: Vec<Option<NaiveDate>>,
    /// `ids.len()` vectors of `dim` values, one after another.
    data: Vec<f32>,
    position: HashMap<String, usize>,
    /// The newest `embedded_at` read.
    seen_until: Option<DateTime<Utc>>,
}

/// A paper near a query, with the cosine similarity (the vectors are unit length).
#[derive(Clone, Debug, PartialEq)]
pub struct Near {
    pub arxiv_id: String,
    pub day: Option<NaiveDate>,
    pub similarity: f32,
}

/// What the dashboard says of the archive in memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub vectors: usize,
    pub bytes: usize,
}

/// Papers whose day lies in `from..=to` (either end open).
#[derive(Clone, Copy, Debug, Default)]
pub struct Days {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Days {
    fn admits(&self, day: Option<NaiveDate>) -> bool {
        match (self.from, self.to) {
            (None, None) => true,
            (from, to) => {
                day.is_some_and(|d| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t))
            }
        }
    }
}

impl Archive {
    /// Reads the vectors of `model` embedded since the last refresh (all of them the first
    /// time, or when the model changed). Returns how many it read.
    pub async fn refresh(&self, db: &PgPool, model: &str) -> sqlx::Result<usize> {
        let mut after: Option<(DateTime<Utc>, String)> = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if state.model != model {
                *state = Vectors { model: model.to_string(), ..Default::default() };
            }
            state.seen_until.map(|t| (t - OVERLAP, String::new()))
        };
        let mut read = 0;
        loop {
            let cursor = after.as_ref().map(|(at, id)| (*at, id.as_str()));
            let page = vectors::page_since(db, model, cursor, PAGE).await?;
            let full = page.len() as i64 == PAGE;
            read += page.len();
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if state.model != model {
                return Ok(read);
            }
            for row in page {
                state.seen_until = state.seen_until.max(Some(row.embedded_at));
                state.put(&row.arxiv_id, row.day, &row.vector);
                after = Some((row.embedded_at, row.arxiv_id));
            }
            if !full {
                return Ok(read);
            }
        }
    }

    /// The `k` papers nearest to `query` among those `within` the days, leaving out `except`.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        within: Days,
        except: Option<&str>,
    ) -> Vec<Near> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if state.dim == 0 || query.len() != state.dim || k == 0 {
            return Vec::new();
        }
        // The best k so far, the worst on top.
        let mut best: BinaryHeap<Reverse<(Score, usize)>> = BinaryHeap::with_capacity(k + 1);
        for (i, vector) in state.data.chunks_exact(state.dim).enumerate() {
            if !within.admits(state.days[i]) || except == Some(state.ids[i].as_str()) {
                continue;
            }
            let score = Score(dot(query, vector));
            if best.len() < k {
                best.push(Reverse((score, i)));
            } else if best.peek().is_some_and(|Reverse((worst, _))| score > *worst) {
                best.pop();
                best.push(Reverse((score, i)));
            }
        }
        let mut found: Vec<(Score, usize)> = best.into_iter().map(|Reverse(b)| b).collect();
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| state.ids[a.1].cmp(&state.ids[b.1])));
        found
            .into_iter()
            .map(|(score, i)| Near {
                arxiv_id: state.ids[i].clone(),
                day: state.days[i],
                similarity: score.0,
            })
            .collect()
    }

    /// The stored vector of a paper, if it has one.
    pub fn vector_of(&self, arxiv_id: &str) -> Option<Vec<f32>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let &i = state.position.get(arxiv_id)?;
        Some(state.data[i * state.dim..(i + 1) * state.dim].to_vec())
    }

    pub fn stats(&self) -> Stats {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let ids: usize = state.ids.iter().map(|id| id.capacity() + 48).sum();
        let bytes = state.data.capacity() * size_of::<f32>()
            + ids * 2
            + state.days.capacity() * size_of::<Option<NaiveDate>>();
        Stats { vectors: state.ids.len(), bytes }
    }
}

impl Vectors {
    /// Adds a paper's vector, or replaces it (a paper embedded again).
    fn put(&mut self, arxiv_id: &str, day: Option<NaiveDate>, vector: &[f32]) {
        if self.dim == 0 {
            self.dim = vector.len();
        }
        if vector.len() != self.dim {
            return;
        }
        match self.position.get(arxiv_id) {
            Some(&i) => {
                self.data[i * self.dim..(i + 1) * self.dim].copy_from_slice(vector);
                self.days[i] = day;
            }
            None => {
                self.position.insert(arxiv_id.to_string(), self.ids.len());
                self.ids.push(arxiv_id.to_string());
                self.days.push(day);
                self.data.extend_from_slice(vector);
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A similarity that orders totally (NaN never comes from unit vectors, but sorts low).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(rows: &[(&str, &str, [f32; 2])]) -> Archive {
        let archive = Archive::default();
        {
            let mut state = archive.state.write().unwrap();
            for (id, day, v) in rows {
                state.put(id, Some(day.parse().unwrap()), v);
            }
        }
        archive
    }

    #[test]
    fn nearest_orders_by_similarity_and_respects_days_and_exceptions() {
        let a = archive(&[
            ("a", "2025-11-01", [1.0, 0.0]),
            ("b", "2025-11-02", [0.8, 0.6]),
            ("c", "2025-11-03", [0.0, 1.0]),
            ("d", "2025-11-04", [0.6, 0.8]),
        ]);
        let ids = |found: Vec<Near>| found.into_iter().map(|n| n.arxiv_id).collect::<Vec<_>>();
        assert_eq!(ids(a.nearest(&[1.0, 0.0], 3, Days::default(), None)), ["a", "b", "d"]);
        assert_eq!(ids(a.nearest(&[1.0, 0.0], 2, Days::default(), Some("a"))), ["b", "d"]);
        let from = Days { from: "2025-11-03".parse().ok(), to: None };
        assert_eq!(ids(a.nearest(&[1.0, 0.0], 5, from, None)), ["d", "c"]);
        let to = Days { from: None, to: "2025-11-02".parse().ok() };
        assert_eq!(ids(a.nearest(&[0.0, 1.0], 5, to, None)), ["b", "a"]);
        // A query of another model's size finds nothing rather than nonsense.
        assert!(a.nearest(&[1.0, 0.0, 0.0], 5, Days::default(), None).is_empty());
    }

    #[test]
    fn a_paper_embedded_again_replaces_its_vector() {
        let a = archive(&[("a", "2025-11-01", [1.0, 0.0]), ("a", "2025-11-01", [0.0, 1.0])]);
        assert_eq!(a.stats().vectors, 1);
        assert_eq!(a.vector_of("a"), Some(vec![0.0, 1.0]));
    }
}
