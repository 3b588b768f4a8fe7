-- Bounces and complaints: the reports that come back by mail or webhook, what they did,
-- and the 'bounced' state of a reader whose address is dead.

ALTER TABLE subscribers
    DROP CONSTRAINT subscribers_status_check,
    ADD CONSTRAINT subscribers_status_check
        CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
    ADD COLUMN bounced_at timestamptz;

ALTER TABLE subscriber_events
    DROP CONSTRAINT subscriber_events_kind_check,
    ADD CONSTRAINT subscriber_events_kind_check
        CHECK (kind IN ('subscribed', 'confirmed', 'unsubscribed', 'resubscribed', 'deleted',
                        'bounced', 'complained'));

-- A delivery whose digest came back as a hard bounce or a complaint after it was sent.
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_status_check,
    ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'sent', 'posted', 'failed', 'skipped', 'cancelled',
                          'bounced'));

-- Every report that named one of our messages or readers. `kind`: 'hard' (permanent
-- failure), 'soft' (temporary: mailbox full, …) or 'complaint' (marked as spam). The
-- digest of the raw report makes a replayed report a no-op.
CREATE TABLE bounces (
    id             bigserial PRIMARY KEY,
    subscriber_id  uuid REFERENCES subscribers (id) ON DELETE CASCADE,
    delivery_id    bigint REFERENCES deliveries (id) ON DELETE SET NULL,
    mail_id        bigint REFERENCES outgoing_mail (id) ON DELETE SET NULL,
    kind           text NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    -- How it came: 'mime' (a DSN/ARF message), 'ses', 'postmark' or 'smtp' (refused at send).
    source         text NOT NULL,
    status_code    text,
    diagnostic     text,
    raw_size       integer NOT NULL DEFAULT 0,
    -- Whether the report proved the message was ours (a VERP tag or our Message-ID).
    -- Unproven reports are kept for the operator and change nothing.
    proven         boolean NOT NULL DEFAULT true,
    raw_digest     bytea UNIQUE,
    received_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bounces_subscriber_idx ON bounces (subscriber_id, received_at);
CREATE INDEX bounces_received_idx ON bounces (received_at, kind);
