-- Sentence-embedding vectors (unit length) for ranking by meaning: one per paper, from its
-- title and abstract, and one per distinct topic text, each under the model that computed
-- it. Only the configured model's vectors are used; when the model changes, its papers are
-- re-embedded and the old model's rows are deleted.
CREATE TABLE paper_vectors (
    arxiv_id text PRIMARY KEY REFERENCES papers (arxiv_id) ON DELETE CASCADE,
    model text NOT NULL,
    vector real[] NOT NULL,
    embedded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX paper_vectors_model_idx ON paper_vectors (model);

CREATE TABLE topic_vectors (
    model text NOT NULL,
    topic text NOT NULL,
    vector real[] NOT NULL,
    embedded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, topic)
);
