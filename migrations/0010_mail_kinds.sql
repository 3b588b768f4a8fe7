-- outgoing_mail.kind is read back as a Rust enum (store::mail_queue::MailKind): the
-- database refuses any other value, so a claimed batch can never hold a row the worker
-- cannot read.
ALTER TABLE outgoing_mail
    ADD CONSTRAINT outgoing_mail_kind_check CHECK (kind IN ('confirmation', 'already_subscribed'));
