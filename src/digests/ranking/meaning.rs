//! Ranking by meaning: an edition's sentence-embedding vectors in one matrix, and how close
//! each candidate is to a subscriber's topics (computed once per edition and topic, shared
//! by every subscriber with that topic) and to what they rated up. Pure.

use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::memo::TopicMemo;

pub use crate::embeddings::topics::key as topic_key;

/// The candidates' unit vectors under one model, each component a signed byte (as
/// `PackedVector`: cosines within about 0.1 %, and a quarter of the memory, so a ranking's
/// pass over every candidate reads 384 KB instead of 1.5 MB for 1,000 of them). A candidate
/// without a vector (not embedded yet) is close to nothing.
pub struct Vectors {
    model: String,
    dim: usize,
    /// Row-major, `dim` bytes a candidate; zeros where a candidate has no vector.
    data: Vec<i8>,
    /// Per candidate: what a row's dot product is multiplied by (0 without a vector).
    unscale: Vec<f32>,
    /// Topic key → similarity of every candidate to it.
    by_topic: TopicMemo<f32>,
}

/// Similarities an edition keeps (4 bytes each: 16 MB); past this the memo starts afresh.
const MEMO_FLOATS: usize = 4 << 20;

impl Vectors {
    /// `rows` in the candidates' order; a row of another length counts as missing.
    pub fn new(model: impl Into<String>, dim: usize, rows: Vec<Option<Vec<f32>>>) -> Self {
        let mut data = vec![0i8; rows.len() * dim];
        let mut unscale = vec![0.0; rows.len()];
        for (i, row) in rows.into_iter().enumerate() {
            if let Some(v) = row.filter(|v| v.len() == dim && dim > 0) {
                let packed = PackedVector::pack(&v);
                data[i * dim..(i + 1) * dim].copy_from_slice(&packed.values);
                unscale[i] = 1.0 / packed.scale;
            }
        }
        Self { model: model.into(), dim, data, unscale, by_topic: TopicMemo::new(MEMO_FLOATS) }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.unscale.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unscale.is_empty()
    }

    /// How many candidates have a vector.
    pub fn embedded(&self) -> usize {
        self.unscale.iter().filter(|u| **u > 0.0).count()
    }

    /// Cosine of candidate `i` with the unit vector `query` (None: it has no vector).
    pub fn similarity(&self, i: usize, query: &Query) -> Option<f32> {
        let unscale = *self.unscale.get(i).filter(|u| **u > 0.0)?;
        let row = &self.data[i * self.dim..(i + 1) * self.dim];
        (query.values.len() == self.dim).then(|| {
            let mut out = [0.0];
            dots(row, self.dim, &query.values, &mut out);
            out[0] * unscale * query.unscale
        })
    }

    /// Cosine of every candidate with the unit vector `query` (0 for candidates without one).
    pub fn similarities(&self, query: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        if query.len() == self.dim && self.dim > 0 {
            let query = Query::new(query);
            dots(&self.data, self.dim, &query.values, &mut out);
            out.iter_mut().zip(&self.unscale).for_each(|(o, u)| *o *= u * query.unscale);
        }
        out
    }

    /// `similarities` of a topic's vector, computed once per edition and topic.
    pub fn topic_similarities(&self, key: &str, query: &[f32]) -> Arc<[f32]> {
        self.by_topic.get_or_compute(key, || self.similarities(query).into())
    }
}

/// What `v` is multiplied by so that its largest component is ±`top` (1 for zeros).
fn scale_to(v: &[f32], top: f32) -> f32 {
    let largest = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if largest > 0.0 { top / largest } else { 1.0 }
}

/// A query as 16-bit integers, scaled so its largest component is ±32,767: its dot product
/// with a row of bytes is exact integer arithmetic, and `unscale` turns it back.
pub struct Query {
    values: Vec<i16>,
    unscale: f32,
}

impl Query {
    pub fn new(v: &[f32]) -> Self {
        let scale = scale_to(v, 32767.0);
        // Truncated, not rounded (a libm call a component): off by less than 1 in 32,767.
        let values = v.iter().map(|x| (x * scale) as i16);
        Self { values: values.collect(), unscale: 1.0 / scale }
    }
}

impl From<&PackedVector> for Query {
    /// Its bytes as they are, without unpacking.
    fn from(packed: &PackedVector) -> Self {
        let values = packed.values.iter().map(|b| i16::from(*b)).collect();
        Self { values, unscale: 1.0 / packed.scale }
    }
}

/// Sum of a row's bytes times a query's integers. A row of 384 bytes stays far from
/// overflow: |127 × 32,767 × 384| < 2³¹.
fn dot_row(row: &[i8], query: &[i16]) -> i32 {
    row.iter().zip(query).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum()
}

/// `out[i]` = row `i` of `data` · `query`, unscaled.
fn dots(data: &[i8], dim: usize, query: &[i16], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { dots_avx2(data, dim, query, out) };
        return;
    }
    for (row, o) in data.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot_row(row, query) as f32;
    }
}

/// Row by row with AVX2: sixteen bytes widened to 16-bit integers, multiplied with the
/// query's and summed in pairs (`vpmaddwd`), two accumulators of eight 32-bit sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(data: &[i8], dim: usize, query: &[i16], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let wide = dim / 32 * 32;
    for (row, o) in data.chunks_exact(dim).zip(out.iter_mut()) {
        // SAFETY: each step reads 16 bytes of `row` and 16 integers of `query` at an offset
        // below `wide` ≤ `dim`, the length of both.
        unsafe {
            let (r, q) = (row.as_ptr(), query.as_ptr());
            let mut acc = [_mm256_setzero_si256(); 2];
            let mut i = 0;
            while i < wide {
                for (k, a) in acc.iter_mut().enumerate() {
                    let at = i + 16 * k;
                    let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(r.add(at).cast()));
                    let y = _mm256_loadu_si256(q.add(at).cast());
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, y));
                }
                i += 32;
            }
            let sum = _mm256_add_epi32(acc[0], acc[1]);
            let half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            let mut lanes = [0i32; 4];
            _mm_storeu_si128(lanes.as_mut_ptr().cast(), half);
            *o = (lanes.iter().sum::<i32>() + dot_row(&row[wide..], &query[wide..])) as f32;
        }
    }
}

/// A vector kept small: each component as a signed byte, scaled so the largest is ±127
/// (cosines within about 0.1 %), base64 in JSON with the scale in front. For what a taste
/// stores: its direction and the liked papers its "why" names.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedVector {
    /// A component is `value / scale`.
    scale: f32,
    values: Vec<i8>,
}

impl PackedVector {
    pub fn pack(v: &[f32]) -> Self {
        let scale = scale_to(v, 127.0);
        let values = v.iter().map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8).collect();
        Self { scale, values }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The vector again, to within half a step a component.
    pub fn unpack(&self) -> Vec<f32> {
        self.values.iter().map(|b| f32::from(*b) / self.scale).collect()
    }

    /// Approximate dot product with `v`.
    pub fn cosine(&self, v: &[f32]) -> f32 {
        self.values.iter().zip(v).map(|(a, b)| f32::from(*a) * b).sum::<f32>() / self.scale
    }
}

impl Serialize for PackedVector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = self.scale.to_le_bytes().to_vec();
        bytes.extend(self.values.iter().map(|b| *b as u8));
        s.serialize_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for PackedVector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(raw)
            .map_err(serde::de::Error::custom)?;
        let (scale, values) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| serde::de::Error::custom("a packed vector needs its scale"))?;
        let scale = f32::from_le_bytes(*scale);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(serde::de::Error::custom("a packed vector's scale must be positive"));
        }
        Ok(Self { scale, values: values.iter().map(|b| *b as i8).collect() })
    }
}

/// What a subscriber's ratings teach in the embedding space: a direction, the centroid of
/// what they rated up and their topics less a quarter of what they rated down (Rocchio;
/// on the relevance benchmark it did as well as an L2-regularised logistic regression on
/// the same vectors: P@5 0.720 against 0.697–0.709), and
/// the liked papers' vectors, so the "why" can name the one a candidate is closest to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeaningTaste {
    /// The model whose vectors these are; under another model the taste is not used.
    pub model: String,
    pub direction: PackedVector,
    /// (index into `Taste::liked`, its vector), most recent first.
    pub liked: Vec<(u16, PackedVector)>,
}

/// Liked papers whose vectors a taste keeps for its "why".
const KEPT_LIKED: usize = 24;
/// Papers rated down push away this much against what was rated up.
const DOWN_WEIGHT: f32 = 0.25;

impl MeaningTaste {
    /// `liked`: (index into the taste's liked list, vector), most recent first. None without
    /// anything rated up.
    pub fn train(
        model: &str,
        liked: &[(usize, &[f32])],
        disliked: &[&[f32]],
        topics: &[&[f32]],
    ) -> Option<Self> {
        let dim = liked.first()?.1.len();
        let mean = |vs: &mut dyn Iterator<Item = &[f32]>| {
            let mut sum = vec![0.0f32; dim];
            let mut n = 0;
            for v in vs.filter(|v| v.len() == dim) {
                sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                n += 1;
            }
            (n > 0).then(|| sum.into_iter().map(|s| s / n as f32).collect::<Vec<f32>>())
        };
        let up = mean(&mut liked.iter().map(|(_, v)| *v).chain(topics.iter().copied()))?;
        let down = mean(&mut disliked.iter().copied()).unwrap_or_else(|| vec![0.0; dim]);
        let direction: Vec<f32> = up.iter().zip(&down).map(|(u, d)| u - DOWN_WEIGHT * d).collect();
        let direction = crate::embeddings::unit(direction);
        Some(Self {
            model: model.to_string(),
            direction: PackedVector::pack(&direction),
            liked: liked
                .iter()
                .filter(|(at, v)| v.len() == dim && *at <= usize::from(u16::MAX))
                .take(KEPT_LIKED)
                .map(|(at, v)| (*at as u16, PackedVector::pack(v)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarities_are_dot_products_and_missing_rows_are_close_to_nothing() {
        let v = Vectors::new(
            "m",
            20,
            vec![Some(vec![0.5; 20]), None, Some(vec![1.0; 3]), Some(vec![-0.25; 20])],
        );
        assert_eq!((v.len(), v.embedded()), (4, 2));
        let q = vec![0.1; 20];
        let s = v.similarities(&q);
        assert!((s[0] - 1.0).abs() < 1e-5 && s[1] == 0.0 && s[2] == 0.0);
        assert!((s[3] + 0.5).abs() < 1e-5);
        assert_eq!(&*v.topic_similarities("t", &q), &s[..]);
        let query = Query::new(&q);
        assert_eq!(v.similarity(0, &query), Some(s[0]));
        assert!(v.similarity(1, &query).is_none() && v.similarity(9, &query).is_none());
        assert!((crate::embeddings::cosine(&q, &q) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn packed_vectors_keep_the_cosine_and_round_trip_through_json() {
        let a = crate::embeddings::unit((0..384).map(|i| ((i * 7) % 13) as f32 - 6.0).collect());
        let packed = PackedVector::pack(&a);
        assert!((packed.cosine(&a) - 1.0).abs() < 0.002, "{}", packed.cosine(&a));
        let json = serde_json::to_string(&packed).unwrap();
        assert!(json.len() < 600, "{} bytes", json.len());
        assert_eq!(serde_json::from_str::<PackedVector>(&json).unwrap(), packed);
    }
}
