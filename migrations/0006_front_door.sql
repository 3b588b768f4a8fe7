-- The front door under load: counting without a hot row, choices kept with a pending
-- confirmation, manage links derived from the secret, and batched mail claims.

-- Subscribers by status, without a hot row. Every statement that changes subscribers
-- appends its net change per status (statement-level triggers over transition tables);
-- readers sum the rows, and a fold now and then replaces them by one row per status.
-- A row trigger updating one shared row per status serialised concurrent sign-ups and
-- made bulk changes quadratic.
DROP TRIGGER subscribers_counted ON subscribers;
DROP TRIGGER subscribers_recounted ON subscribers;
DROP FUNCTION paperboy_count_subscribers();
ALTER TABLE subscriber_counts DROP CONSTRAINT subscriber_counts_pkey;

CREATE FUNCTION paperboy_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscriber_counts (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
    RETURN NULL;
END
$$;

CREATE FUNCTION paperboy_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscriber_counts (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
    RETURN NULL;
END
$$;

CREATE FUNCTION paperboy_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscriber_counts (status, n)
    SELECT status, sum(d) FROM (
        SELECT status, 1 AS d FROM new_rows
        UNION ALL
        SELECT status, -1 AS d FROM old_rows
    ) AS changes
    GROUP BY status HAVING sum(d) <> 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER subscribers_counted_insert AFTER INSERT ON subscribers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION paperboy_count_inserted();
CREATE TRIGGER subscribers_counted_delete AFTER DELETE ON subscribers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION paperboy_count_deleted();
CREATE TRIGGER subscribers_counted_update AFTER UPDATE ON subscribers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION paperboy_count_updated();

-- What a pending or unsubscribed address asked for when the form was sent again: applied
-- only when the confirmation link is used, so a stranger cannot change a reader's choices.
ALTER TABLE subscribers
    ADD COLUMN pending_topics      text[],
    ADD COLUMN pending_categories  text[],
    ADD COLUMN pending_frequency   text CHECK (pending_frequency IN ('daily', 'weekly'));

-- Manage links are now derived from the subscriber id with an HMAC under the signing
-- secret, so no working link is stored. Links already in readers' mailboxes keep working
-- through the SHA-256 of the old token.
ALTER TABLE subscribers ADD COLUMN legacy_manage_hash bytea;
UPDATE subscribers SET legacy_manage_hash = sha256(convert_to(manage_token, 'UTF8'));
ALTER TABLE subscribers DROP COLUMN manage_token;
CREATE UNIQUE INDEX subscribers_legacy_manage_idx ON subscribers (legacy_manage_hash)
    WHERE legacy_manage_hash IS NOT NULL;

-- Transactional mail is claimed in batches like deliveries: marked with the worker's
-- backend pid (a dead worker's rows are free again at once), each outcome recorded as it
-- is sent. Sent mail keeps its subject and kind, not its link-bearing body.
ALTER TABLE outgoing_mail
    ADD COLUMN claimed_by  integer,
    ADD COLUMN claimed_at  timestamptz;
-- A queued email (a few KB of HTML and text) lives for seconds: compressing it into TOAST
-- cost more than writing it as it is (pglz was Postgres's largest cost on the sign-up path).
ALTER TABLE outgoing_mail SET (toast_tuple_target = 8160);
UPDATE outgoing_mail SET body_text = '', body_html = '' WHERE status <> 'pending';

-- A confirmation link works once: confirming moves its hash here, so a second click can
-- say "already confirmed" without handing out the manage link again.
ALTER TABLE subscribers ADD COLUMN used_confirm_hash bytea;
UPDATE subscribers SET used_confirm_hash = confirm_token_hash, confirm_token_hash = NULL,
                       confirm_expires_at = NULL
WHERE status = 'confirmed' AND confirm_token_hash IS NOT NULL;
CREATE INDEX subscribers_used_confirm_idx ON subscribers (used_confirm_hash)
    WHERE used_confirm_hash IS NOT NULL;
