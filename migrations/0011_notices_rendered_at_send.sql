-- Transactional mail is rendered when it is sent, from a small JSON notice (its kind, the
-- confirmation token, the choices it shows): a sign-up's queued email shrinks from ~2.7 KB
-- of HTML and text, written twice (queued, then claimed), to a few hundred bytes. That was
-- most of a sign-up's WAL, and the WAL volume set how often checkpoints stalled commits.
-- Messages queued before this version keep their rendered bodies and go out as they are.
ALTER TABLE outgoing_mail
    ADD COLUMN notice jsonb,
    ALTER COLUMN body_text SET DEFAULT '',
    ALTER COLUMN body_html SET DEFAULT '';
