-- The papers that wait for a vector. Embedders poll for work every few seconds; finding it
-- by comparing papers with paper_vectors reads both tables whole (about a second on both
-- cores at 1,000,000 papers, on every poll). This table holds just the waiting ones: a
-- stored paper joins it and its vector takes it out, whoever writes them. When the model
-- changes, the embedders queue every paper that lacks a vector of the new one.
CREATE TABLE papers_to_embed (
    arxiv_id text PRIMARY KEY REFERENCES papers (arxiv_id) ON DELETE CASCADE
);

CREATE FUNCTION paperboy_queue_new_papers() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO papers_to_embed (arxiv_id) SELECT arxiv_id FROM added ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
-- Only the inserted rows: an upsert's updated rows are not in an INSERT's transition table.
CREATE TRIGGER papers_queue_for_vector AFTER INSERT ON papers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION paperboy_queue_new_papers();

CREATE FUNCTION paperboy_dequeue_embedded() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM papers_to_embed q USING added WHERE q.arxiv_id = added.arxiv_id;
    RETURN NULL;
END $$;
-- A trigger with a transition table takes one event: one for inserts, one for updates.
CREATE TRIGGER paper_vectors_inserted AFTER INSERT ON paper_vectors
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION paperboy_dequeue_embedded();
CREATE TRIGGER paper_vectors_updated AFTER UPDATE ON paper_vectors
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION paperboy_dequeue_embedded();

INSERT INTO papers_to_embed (arxiv_id)
SELECT arxiv_id FROM papers p
WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v WHERE v.arxiv_id = p.arxiv_id);
