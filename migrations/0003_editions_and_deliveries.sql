-- Digest editions; one delivery row per (reader, edition), with the papers it carried (a
-- paper is never sent twice to the same reader); and the queue of deliveries still to do.

CREATE TABLE editions (
    id          bigserial PRIMARY KEY,
    frequency   text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    -- The paper day, or the last day of the week covered.
    day         date NOT NULL,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (frequency, day)
);

-- The record of each delivery. No index covers the columns that change while it is
-- delivered, so those updates stay HOT (in-page) and cheap.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    edition_id       bigint NOT NULL REFERENCES editions (id),
    -- Kept (as NULL) when a subscriber is erased, so counts stay.
    subscriber_id    uuid REFERENCES subscribers (id) ON DELETE SET NULL,
    edition_label    text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    message_id       text,
    subject          text,
    paper_ids        text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    -- At most one delivery of an edition to a reader.
    UNIQUE (subscriber_id, edition_label)
) WITH (fillfactor = 70);

CREATE INDEX deliveries_edition_idx ON deliveries (edition_id);

-- Deliveries not finished yet. Workers claim rows with FOR UPDATE SKIP LOCKED and mark
-- them with the backend pid of their Postgres connection: when that connection is gone
-- (the worker's process died) the row is free again. A finished delivery leaves the queue.
CREATE TABLE delivery_queue (
    delivery_id      bigint PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    edition_id       bigint NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    claimed_by       integer,
    claimed_at       timestamptz
) WITH (fillfactor = 70);

CREATE INDEX subscribers_digest_idx ON subscribers (frequency, weekday) WHERE status = 'confirmed';
