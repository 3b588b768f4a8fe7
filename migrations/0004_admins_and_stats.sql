-- Operators, their sessions, and daily rollups that keep the dashboard fast.

CREATE TABLE admins (
    id             bigserial PRIMARY KEY,
    email          text NOT NULL,
    email_key      text NOT NULL UNIQUE,
    password_hash  text NOT NULL,            -- argon2id, PHC string
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Only a hash of the session cookie is stored; logging out revokes the row.
CREATE TABLE admin_sessions (
    token_hash  bytea PRIMARY KEY,
    admin_id    bigint NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Per-day counts for the charts: complete days are computed once and kept.
CREATE TABLE daily_stats (
    day     date NOT NULL,
    metric  text NOT NULL,
    value   bigint NOT NULL,
    PRIMARY KEY (day, metric)
);

CREATE INDEX deliveries_created_at_idx ON deliveries (created_at);
CREATE INDEX subscribers_email_key_pattern_idx ON subscribers (email_key text_pattern_ops);
