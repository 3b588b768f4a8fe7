//! Papers: the sources (Hugging Face Daily Papers, arXiv), ingest runs, and the archive's
//! vectors in memory for similar papers and search.

pub mod ingest;
pub mod nearest;
pub mod sources;
