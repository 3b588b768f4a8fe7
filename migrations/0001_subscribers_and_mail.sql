-- Readers, their preferences, the events the dashboard counts, and the mail queue.

CREATE TABLE app_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE subscribers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text NOT NULL,
    email_key           text NOT NULL UNIQUE,          -- lower-cased address
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    topics              text[] NOT NULL DEFAULT '{}',
    categories          text[] NOT NULL DEFAULT '{}',
    authors             text[] NOT NULL DEFAULT '{}',
    frequency           text NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
    weekday             smallint NOT NULL DEFAULT 1 CHECK (weekday BETWEEN 1 AND 7),
    delivery_hour       smallint NOT NULL DEFAULT 7 CHECK (delivery_hour BETWEEN 0 AND 23),
    time_zone           text NOT NULL DEFAULT 'UTC',
    papers_per_email    integer NOT NULL DEFAULT 10 CHECK (papers_per_email BETWEEN 1 AND 50),
    min_upvotes         integer NOT NULL DEFAULT 0 CHECK (min_upvotes >= 0),
    -- Preferences and unsubscribe links; random, never the id.
    manage_token        text NOT NULL UNIQUE,
    -- Only the SHA-256 of the confirmation token is kept.
    confirm_token_hash  bytea UNIQUE,
    confirm_expires_at  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    confirmed_at        timestamptz,
    unsubscribed_at     timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX subscribers_status_idx ON subscribers (status);

-- One row per sign-up, confirmation, unsubscribe or resubscribe: the dashboard's trends.
CREATE TABLE subscriber_events (
    id             bigserial PRIMARY KEY,
    subscriber_id  uuid REFERENCES subscribers (id) ON DELETE SET NULL,
    kind           text NOT NULL
                   CHECK (kind IN ('subscribed', 'confirmed', 'unsubscribed', 'resubscribed', 'deleted')),
    at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX subscriber_events_at_idx ON subscriber_events (at, kind);

-- Transactional mail, written in the same transaction as the change that causes it and
-- delivered by the mail worker. A row stays 'pending' until sent or given up.
CREATE TABLE outgoing_mail (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    subscriber_id    uuid REFERENCES subscribers (id) ON DELETE CASCADE,
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    body_html        text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    message_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);

CREATE INDEX outgoing_mail_due_idx ON outgoing_mail (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outgoing_mail_subscriber_idx ON outgoing_mail (subscriber_id, created_at);
