//! The archive's paper vectors in this process's memory, for similar papers and search by
//! meaning. Postgres keeps the vectors; each `serve` process loads its own copy in the
//! background at start and tops it up with what any process embedded since, so search
//! scales out with instances.
//!
//! Queries go to an approximate nearest-neighbour index (HNSW, usearch) once it is built,
//! in the background, from the vectors in memory; until then, and for a date range too
//! narrow for it, they are an exact scan of every vector. Vectors read since the index last
//! caught up are scanned exactly and merged in, so a query never misses a new paper.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::store::vectors;

/// Vectors read per query while loading.
const PAGE: i64 = 5_000;
/// A refresh reads again what was embedded this long before the newest vector it has seen:
/// a transaction that committed late may carry an older `embedded_at`.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(120);

/// HNSW links per node, and candidates kept while inserting and searching, chosen on
/// `bash bench/search_scale.sh` (recall@10 against the exact scan; see the README).
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
pub const EXPANSION_SEARCH: usize = 256;
/// Searches the index serves at once (usearch needs a slot per concurrent caller); a
/// search finding none free is an exact scan instead.
const SEARCH_SLOTS: usize = 64;
/// Vectors copied out of the archive per insertion step (the archive is not locked while
/// the index takes them in).
const INDEX_CHUNK: usize = 1024;

/// The vectors of the archive's papers under one model.
#[derive(Default)]
pub struct Archive {
    state: RwLock<Vectors>,
    /// Queries hold the read lock while they search (growing the index takes the write
    /// lock); building works on its own handle. Lock order: `state`, then `index`.
    index: RwLock<Option<Arc<Approximate>>>,
}

/// The approximate index over the archive's positions `0..covered`, keyed by position.
struct Approximate {
    index: usearch::Index,
    model: String,
    dim: usize,
    covered: AtomicUsize,
    /// The first build is done: queries use the index.
    ready: AtomicBool,
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
    /// Positions whose vector was replaced (a paper embedded again) since the index read them.
    replaced: Vec<usize>,
    /// The first read of the model's vectors is complete: the index may be built (a build
    /// started halfway through the load would call itself done over part of the archive).
    loaded: bool,
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
    /// Vectors in the approximate index, and its memory.
    pub indexed: usize,
    pub index_bytes: usize,
    /// Whether queries use the index (its first build is done).
    pub index_ready: bool,
}

/// Papers whose day lies in `from..=to` (either end open).
#[derive(Clone, Copy, Debug, Default)]
pub struct Days {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Days {
    fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

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
                state.loaded = true;
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
        let except = except.and_then(|id| state.position.get(id).copied());
        let found = match self.approximate(&state, query, k, within, except) {
            Some(found) => found,
            None => state.scan(query, k, within, except, 0..state.ids.len()),
        };
        found
            .into_iter()
            .map(|(score, i)| Near {
                arxiv_id: state.ids[i].clone(),
                day: state.days[i],
                similarity: score.0,
            })
            .collect()
    }

    /// The index's answer, with the vectors it has not taken in yet scanned exactly; None
    /// when it is not ready, busy, or a date range left it too few papers to trust.
    fn approximate(
        &self,
        state: &Vectors,
        query: &[f32],
        k: usize,
        within: Days,
        except: Option<usize>,
    ) -> Option<Vec<(Score, usize)>> {
        let guard = self.index.read().unwrap_or_else(|e| e.into_inner());
        let ann = guard.as_ref().filter(|a| a.ready.load(Ordering::Acquire))?;
        if ann.model != state.model || ann.dim != state.dim {
            return None;
        }
        let covered = ann.covered.load(Ordering::Acquire).min(state.ids.len());
        let want = k + usize::from(except.is_some());
        let matches = if within.is_open() {
            ann.index.search(query, want)
        } else {
            ann.index.filtered_search(query, want, |key| {
                state.days.get(key as usize).is_some_and(|d| within.admits(*d))
            })
        }
        .ok()?;
        if !within.is_open() && matches.keys.len() < want {
            return None;
        }
        let mut found: Vec<(Score, usize)> = matches
            .keys
            .iter()
            .map(|&key| key as usize)
            .filter(|&i| i < covered && Some(i) != except)
            .map(|i| (Score(dot(query, state.vector(i))), i))
            .collect();
        found.extend(state.scan(query, k, within, except, covered..state.ids.len()));
        Some(state.best(found, k))
    }

    /// Brings the approximate index up to the vectors in memory: builds it the first time
    /// (on `threads` threads of low priority), then adds what was read since and re-adds
    /// what was replaced. Blocking: run it off the async runtime. Returns how many vectors
    /// it took in.
    pub fn catch_up_index(&self, threads: usize) -> usize {
        let (model, dim, len, replaced) = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if !state.loaded {
                return 0;
            }
            let replaced = std::mem::take(&mut state.replaced);
            (state.model.clone(), state.dim, state.ids.len(), replaced)
        };
        if dim == 0 || len == 0 {
            return 0;
        }
        if !self.index_matches(&model, dim) && !self.start_index(&model, dim, len) {
            return 0;
        }
        let Some(ann) = self.index.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return 0;
        };
        let covered = ann.covered.load(Ordering::Acquire);
        for &i in replaced.iter().filter(|&&i| i < covered) {
            if let Some(v) = self.vector_at(i) {
                let _ = ann.index.remove(i as u64);
                let _ = ann.index.add(i as u64, &v);
            }
        }
        if covered >= len {
            ann.ready.store(true, Ordering::Release);
            return replaced.len();
        }
        if ann.index.capacity() < len {
            if !self.grow_index(len) {
                return 0;
            }
            return self.catch_up_index(threads);
        }
        let started = Instant::now();
        let first = !ann.ready.load(Ordering::Acquire);
        self.add_range(&ann, covered..len, threads);
        ann.covered.store(len, Ordering::Release);
        ann.ready.store(true, Ordering::Release);
        if first {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(vectors = len, seconds = secs, "the search index is built");
        }
        len - covered + replaced.len()
    }

    /// Candidates kept while searching the index (benchmarks compare settings; `serve`
    /// keeps [`EXPANSION_SEARCH`]).
    pub fn set_search_expansion(&self, candidates: usize) {
        let guard = self.index.read().unwrap_or_else(|e| e.into_inner());
        if let Some(ann) = guard.as_ref() {
            ann.index.change_expansion_search(candidates);
        }
    }

    fn index_matches(&self, model: &str, dim: usize) -> bool {
        let guard = self.index.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().is_some_and(|a| a.model == model && a.dim == dim)
    }

    /// A new, empty index for `model` with room for `len` vectors (a model change drops
    /// the old one). False if usearch refused.
    fn start_index(&self, model: &str, dim: usize, len: usize) -> bool {
        let options = usearch::IndexOptions {
            dimensions: dim,
            // Unit vectors: the inner product is the cosine. Half-precision halves memory.
            metric: usearch::MetricKind::IP,
            quantization: usearch::ScalarKind::F16,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        };
        let index = match usearch::Index::new(&options) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(error = %e, "could not create the search index; searches stay exact");
                return false;
            }
        };
        let ann = Approximate {
            index,
            model: model.to_string(),
            dim,
            covered: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
        };
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(ann));
        self.grow_index(len)
    }

    /// Room for `len` vectors and a quarter more (no query runs meanwhile).
    fn grow_index(&self, len: usize) -> bool {
        let guard = self.index.write().unwrap_or_else(|e| e.into_inner());
        let Some(ann) = guard.as_ref() else { return false };
        let capacity = len + len / 4 + 1024;
        match ann.index.reserve_capacity_and_threads(capacity, SEARCH_SLOTS) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, capacity, "could not grow the search index");
                false
            }
        }
    }

    /// Adds the vectors at `range` to the index on `threads` threads of low priority, a
    /// chunk copied out of the archive at a time.
    fn add_range(&self, ann: &Approximate, range: std::ops::Range<usize>, threads: usize) {
        let next = AtomicUsize::new(range.start);
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    lower_priority();
                    loop {
                        let start = next.fetch_add(INDEX_CHUNK, Ordering::Relaxed);
                        if start >= range.end {
                            return;
                        }
                        let end = (start + INDEX_CHUNK).min(range.end);
                        let Some((dim, chunk)) = self.copy_range(start..end) else { return };
                        for (j, v) in chunk.chunks_exact(dim).enumerate() {
                            if let Err(e) = ann.index.add((start + j) as u64, v) {
                                tracing::warn!(error = %e, "could not index a vector");
                            }
                        }
                    }
                });
            }
        });
    }

    fn copy_range(&self, range: std::ops::Range<usize>) -> Option<(usize, Vec<f32>)> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let dim = state.dim;
        state.data.get(range.start * dim..range.end * dim).map(|d| (dim, d.to_vec()))
    }

    fn vector_at(&self, i: usize) -> Option<Vec<f32>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (i < state.ids.len()).then(|| state.vector(i).to_vec())
    }

    /// Adds (or replaces) one paper's vector directly, as `refresh` does from Postgres: for
    /// tools and benchmarks that hold vectors already.
    pub fn insert(&self, model: &str, arxiv_id: &str, day: Option<NaiveDate>, vector: &[f32]) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.model != model {
            *state = Vectors { model: model.to_string(), ..Default::default() };
        }
        state.put(arxiv_id, day, vector);
        state.loaded = true;
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
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let (indexed, index_bytes, index_ready) = index.as_ref().map_or((0, 0, false), |a| {
            (a.index.size(), a.index.memory_usage(), a.ready.load(Ordering::Acquire))
        });
        Stats { vectors: state.ids.len(), bytes, indexed, index_bytes, index_ready }
    }
}

impl Vectors {
    fn vector(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The best `k` of the positions in `range` by exact comparison.
    fn scan(
        &self,
        query: &[f32],
        k: usize,
        within: Days,
        except: Option<usize>,
        range: std::ops::Range<usize>,
    ) -> Vec<(Score, usize)> {
        // The best k so far, the worst on top.
        let mut best: BinaryHeap<Reverse<(Score, usize)>> = BinaryHeap::with_capacity(k + 1);
        for i in range {
            if !within.admits(self.days[i]) || except == Some(i) {
                continue;
            }
            let score = Score(dot(query, self.vector(i)));
            if best.len() < k {
                best.push(Reverse((score, i)));
            } else if best.peek().is_some_and(|Reverse((worst, _))| score > *worst) {
                best.pop();
                best.push(Reverse((score, i)));
            }
        }
        self.best(best.into_iter().map(|Reverse(b)| b).collect(), k)
    }

    /// Nearest first (ties by id), at most `k`.
    fn best(&self, mut found: Vec<(Score, usize)>, k: usize) -> Vec<(Score, usize)> {
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| self.ids[a.1].cmp(&self.ids[b.1])));
        found.dedup_by_key(|f| f.1);
        found.truncate(k);
        found
    }

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
                self.days[i] = day;
                // A refresh reads the last two minutes again: the same vector is no change
                // (re-indexing it would redo the index's work for every paper re-read).
                let stored = &mut self.data[i * self.dim..(i + 1) * self.dim];
                if stored != vector {
                    stored.copy_from_slice(vector);
                    self.replaced.push(i);
                }
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

/// Index building yields the CPU to requests (Linux: niceness is per thread).
fn lower_priority() {
    // SAFETY: setpriority only reads its arguments; 0 names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// In eight lanes, which the compiler turns into SIMD (a plain sum must keep its order and
/// cannot be): the exact scan runs about three times as fast.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut lanes = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
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

    /// Unit vectors around a few directions, as sentence vectors cluster by subject.
    fn clustered(n: usize, dim: usize) -> Vec<Vec<f32>> {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..8).map(|_| (0..dim).map(|_| next()).collect()).collect();
        (0..n)
            .map(|i| {
                let v: Vec<f32> = centres[i % 8].iter().map(|c| c + 0.6 * next()).collect();
                crate::embeddings::unit(v)
            })
            .collect()
    }

    #[test]
    fn the_index_answers_as_the_exact_scan_does_and_misses_no_new_paper() {
        let dim = 32;
        let vectors = clustered(3000, dim);
        let archive = Archive::default();
        let put = |a: &Archive, from: usize, to: usize| {
            let mut state = a.state.write().unwrap();
            state.model = "m".into();
            state.loaded = true;
            for (i, v) in vectors[from..to].iter().enumerate() {
                let day = NaiveDate::from_ymd_opt(2025, 11, 1 + ((from + i) % 28) as u32);
                state.put(&format!("p{}", from + i), day, v);
            }
        };
        // Nothing is built over an archive still loading.
        let loading = Archive::default();
        loading.state.write().unwrap().put("p0", None, &vectors[0]);
        assert_eq!(loading.catch_up_index(1), 0);
        assert!(!loading.stats().index_ready && loading.stats().indexed == 0);

        put(&archive, 0, 2500);
        let exact: Vec<Vec<Near>> =
            vectors[..50].iter().map(|q| archive.nearest(q, 10, Days::default(), None)).collect();
        assert!(!archive.stats().index_ready);
        assert_eq!(archive.catch_up_index(2), 2500);
        let stats = archive.stats();
        assert!(stats.index_ready && stats.indexed == 2500 && stats.index_bytes > 0);
        let mut agree = 0;
        for (q, exact) in vectors[..50].iter().zip(&exact) {
            let found = archive.nearest(q, 10, Days::default(), None);
            agree += found.iter().filter(|n| exact.contains(n)).count();
        }
        assert!(agree >= 50 * 10 * 95 / 100, "recall@10 {}", agree as f32 / 500.0);

        // Papers read after the build are found before the index takes them in.
        put(&archive, 2500, 3000);
        let newest = &vectors[2999];
        assert_eq!(archive.nearest(newest, 1, Days::default(), None)[0].arxiv_id, "p2999");
        assert_ne!(archive.nearest(newest, 1, Days::default(), Some("p2999"))[0].arxiv_id, "p2999");
        assert_eq!(archive.catch_up_index(2), 500);
        // Read again unchanged (a refresh's overlap): nothing to re-index.
        put(&archive, 2000, 3000);
        assert_eq!(archive.catch_up_index(2), 0);
        assert_eq!(archive.nearest(newest, 1, Days::default(), None)[0].arxiv_id, "p2999");

        // A date range: only papers of those days, through the index or the scan.
        let day = NaiveDate::from_ymd_opt(2025, 11, 3);
        let within = Days { from: day, to: day };
        let found = archive.nearest(&vectors[0], 10, within, None);
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|n| n.day == day), "{found:?}");
    }

    #[test]
    fn a_paper_embedded_again_replaces_its_vector() {
        let a = archive(&[("a", "2025-11-01", [1.0, 0.0]), ("a", "2025-11-01", [0.0, 1.0])]);
        assert_eq!(a.stats().vectors, 1);
        assert_eq!(a.vector_of("a"), Some(vec![0.0, 1.0]));
    }
}
