-- A rating retrains from the subscriber's latest ratings only: read them in order from an
-- index instead of sorting all of them.
CREATE INDEX ratings_recent_idx ON ratings (subscriber_id, rated_at DESC, arxiv_id);
