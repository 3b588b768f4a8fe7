-- The reader's web: 'feed' as a frequency (digests kept for the reader's feed, no email),
-- a feed generation that resetting the feed bumps (the feed link is a MAC over the reader
-- and it, so the old link stops working), and the why-line of each paper a delivery
-- carried, so its web copy and feed entries say what the email said.

ALTER TABLE subscribers
    DROP CONSTRAINT subscribers_frequency_check,
    ADD CONSTRAINT subscribers_frequency_check CHECK (frequency IN ('daily', 'weekly', 'feed')),
    DROP CONSTRAINT subscribers_pending_frequency_check,
    ADD CONSTRAINT subscribers_pending_frequency_check
        CHECK (pending_frequency IN ('daily', 'weekly', 'feed')),
    ADD COLUMN feed_generation integer NOT NULL DEFAULT 0;

-- 'posted': a digest of a feed-only reader, kept for their feed and web copy, not mailed.
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_status_check,
    ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'sent', 'posted', 'failed', 'skipped', 'cancelled')),
    ADD COLUMN why text[] NOT NULL DEFAULT '{}';

-- No new index: a reader's deliveries are found through UNIQUE (subscriber_id,
-- edition_label), and an index on sent_at or status would end the HOT updates of sending.
