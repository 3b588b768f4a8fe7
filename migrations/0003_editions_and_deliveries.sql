-- Digest editions and one delivery row per (reader, edition), with the papers it carried
-- (paper_ids: a paper is never sent twice to the same reader).

CREATE TABLE editions (
    id          bigserial PRIMARY KEY,
    frequency   text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    -- The paper day, or the last day of the week covered.
    day         date NOT NULL,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (frequency, day)
);

CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    edition_id       bigint NOT NULL REFERENCES editions (id),
    -- Kept (as NULL) when a subscriber is erased, so counts stay.
    subscriber_id    uuid REFERENCES subscribers (id) ON DELETE SET NULL,
    edition_label    text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    -- The Postgres backend (pid) of the worker holding a 'sending' row: when that
    -- connection is gone, the row is free again.
    claimed_by       integer,
    claimed_at       timestamptz,
    last_error       text,
    message_id       text,
    subject          text,
    paper_ids        text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    -- At most one delivery of an edition to a reader.
    UNIQUE (subscriber_id, edition_label)
);

CREATE INDEX deliveries_pending_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending_idx ON deliveries (claimed_at) WHERE status = 'sending';
CREATE INDEX deliveries_edition_idx ON deliveries (edition_id, status);

CREATE INDEX subscribers_digest_idx ON subscribers (frequency, weekday) WHERE status = 'confirmed';

-- Workers take pending rows in id order; this keeps each claim from walking past the
-- rows already sent.
CREATE INDEX deliveries_pending_id_idx ON deliveries (id) WHERE status = 'pending';
