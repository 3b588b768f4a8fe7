-- "Papers like these": papers a reader names as examples (pasted, added from a web copy, or
-- found in their BibTeX library). Each counts as a 👍, a row in ratings that says where it
-- came from, once its paper is stored; until then it waits in wanted_examples while the
-- paper is fetched from arXiv's query API.
ALTER TABLE ratings ADD COLUMN source text NOT NULL DEFAULT 'digest'
    CHECK (source IN ('digest', 'example', 'library'));
-- Tastes to retrain when a rated paper's vector arrives.
CREATE INDEX ratings_paper_idx ON ratings (arxiv_id);

CREATE TABLE wanted_examples (
    subscriber_id  uuid NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    arxiv_id       text NOT NULL,
    source         text NOT NULL CHECK (source IN ('example', 'library')),
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber_id, arxiv_id)
);
CREATE INDEX wanted_examples_paper_idx ON wanted_examples (arxiv_id);

-- Every id ever asked of arXiv's query API, so that each is fetched once: queued, then
-- found (stored in papers) or missing (arXiv has no such paper). Not personal data.
CREATE TABLE arxiv_lookups (
    arxiv_id      text PRIMARY KEY,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'found', 'missing')),
    attempts      integer NOT NULL DEFAULT 0,
    next_try_at   timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
CREATE INDEX arxiv_lookups_queued_idx ON arxiv_lookups (next_try_at) WHERE state = 'queued';

-- arXiv's terms: one request at a time and one every 3 s, across all our instances. The
-- instance whose turn it is moves next_at ahead while its request runs.
CREATE TABLE arxiv_api_turn (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    next_at   timestamptz NOT NULL
);
INSERT INTO arxiv_api_turn (next_at) VALUES ('-infinity');

-- Examples named at sign-up wait with the link, as the other choices do: only confirming
-- applies them.
ALTER TABLE subscribers ADD COLUMN pending_examples text[];
ALTER TABLE pending_links ADD COLUMN examples text[];

-- A reader's reference library, from an uploaded BibTeX file. Entries with an arXiv id
-- become examples; the others are liked as they are, by their title and abstract, once
-- embedded.
CREATE TABLE libraries (
    subscriber_id  uuid PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    file_name      text NOT NULL,
    entries        integer NOT NULL,
    -- [{"key": ..., "reason": ...}] for the entries not used.
    skipped        jsonb NOT NULL DEFAULT '[]',
    uploaded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE library_entries (
    subscriber_id  uuid NOT NULL REFERENCES libraries (subscriber_id) ON DELETE CASCADE,
    position       integer NOT NULL,
    cite_key       text NOT NULL,
    title          text NOT NULL,
    abstract       text NOT NULL DEFAULT '',
    model          text,
    vector         real[],
    embedded_at    timestamptz,
    PRIMARY KEY (subscriber_id, position)
);
CREATE INDEX library_entries_unembedded_idx ON library_entries (subscriber_id, position)
    WHERE vector IS NULL;
CREATE INDEX library_entries_embedded_idx ON library_entries (embedded_at)
    WHERE embedded_at IS NOT NULL;
