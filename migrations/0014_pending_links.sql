-- A pending subscriber may hold several confirmation links: each sign-up sends one, and a
-- later one must not void an earlier one (someone else may have posted the form with the
-- address). The subscriber row keeps the latest link and its choices; each earlier link
-- still in time waits here with the choices it was sent with, until it expires or the
-- subscriber confirms or leaves.
CREATE TABLE pending_links (
    hash           bytea PRIMARY KEY,              -- SHA-256 of the token, never the token
    subscriber_id  uuid NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topics         text[],
    categories     text[],
    frequency      text,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX pending_links_subscriber_idx ON pending_links (subscriber_id);
