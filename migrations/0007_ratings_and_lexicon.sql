-- Ranking that learns: readers' ratings, the model trained from them, and the lexicon
-- (document frequencies and acronyms) learned from the stored papers at ingest.

-- One rating per reader and paper: +1 "more like this", -1 "less like this".
-- Erasing a reader erases their ratings.
CREATE TABLE ratings (
    subscriber_id  uuid NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    arxiv_id       text NOT NULL REFERENCES papers (arxiv_id) ON DELETE CASCADE,
    rating         smallint NOT NULL CHECK (rating IN (-1, 1)),
    rated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber_id, arxiv_id)
);

-- The model trained from a reader's ratings (and topics), kept so a send of many readers
-- retrains none of them. Rewritten on every rating and preferences change.
CREATE TABLE tastes (
    subscriber_id  uuid PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    model          jsonb NOT NULL,
    trained_at     timestamptz NOT NULL DEFAULT now()
);

-- How much "what the field is reading" (upvotes) counts against "what matches me":
-- 0 = upvotes only break ties, 100 = popularity leads.
ALTER TABLE subscribers
    ADD COLUMN trend_weight smallint NOT NULL DEFAULT 15 CHECK (trend_weight BETWEEN 0 AND 100);

-- In how many stored papers each stemmed word occurs (for IDF). Papers are counted once,
-- when the lexicon first reads them (`lexicon_at`).
CREATE TABLE lexicon_terms (
    term  text PRIMARY KEY,
    df    integer NOT NULL
);

-- Acronyms as the papers define them ("reinforcement learning from human feedback
-- (RLHF)"): the short form lower-cased, the long form as stemmed words, and in how many
-- papers the pair was seen.
CREATE TABLE acronyms (
    short      text NOT NULL,
    long_form  text NOT NULL,
    papers     integer NOT NULL,
    PRIMARY KEY (short, long_form)
);

ALTER TABLE papers ADD COLUMN lexicon_at timestamptz;
CREATE INDEX papers_lexicon_todo_idx ON papers (arxiv_id) WHERE lexicon_at IS NULL;
