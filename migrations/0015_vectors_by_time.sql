-- Each serve process keeps the archive's vectors in memory and tops them up with what was
-- embedded since it last looked: read them in order of embedding.
CREATE INDEX paper_vectors_embedded_idx ON paper_vectors (model, embedded_at, arxiv_id);
