-- Papers from both sources, keyed by arXiv id without version, and a record of every ingest run.

-- array_to_string is only STABLE; a generated column needs IMMUTABLE. Joining text is.
CREATE FUNCTION paperboy_join_keywords(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$;

CREATE TABLE papers (
    arxiv_id        text PRIMARY KEY,
    arxiv_version   integer,
    title           text NOT NULL,
    abstract        text NOT NULL DEFAULT '',
    authors         text[] NOT NULL DEFAULT '{}',
    published_at    timestamptz,
    -- The Hugging Face featured day, when featured there.
    featured_on     date,
    -- The arXiv announcement day and type (new, cross, replace, replace-cross).
    announced_on    date,
    announce_type   text,
    categories      text[] NOT NULL DEFAULT '{}',
    upvotes         integer NOT NULL DEFAULT 0,
    num_comments    integer NOT NULL DEFAULT 0,
    ai_summary      text,
    ai_keywords     text[] NOT NULL DEFAULT '{}',
    github_repo     text,
    github_stars    integer,
    project_page    text,
    organization    text,
    thumbnail       text,
    withdrawn_at    timestamptz,
    on_huggingface  boolean NOT NULL DEFAULT false,
    on_arxiv        boolean NOT NULL DEFAULT false,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    search          tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', title), 'A')
                        || setweight(to_tsvector('english', paperboy_join_keywords(ai_keywords)), 'B')
                        || setweight(to_tsvector('english', abstract), 'C')
                    ) STORED
);

CREATE INDEX papers_search_idx ON papers USING gin (search);
CREATE INDEX papers_featured_idx ON papers (featured_on, upvotes DESC) WHERE featured_on IS NOT NULL;
CREATE INDEX papers_announced_idx ON papers (announced_on) WHERE announced_on IS NOT NULL;

CREATE TABLE ingest_runs (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL CHECK (source IN ('huggingface', 'arxiv')),
    day          date,
    trigger      text NOT NULL CHECK (trigger IN ('cli', 'scheduler', 'admin')),
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    fetched      integer NOT NULL DEFAULT 0,
    inserted     integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    error        text
);

CREATE INDEX ingest_runs_started_idx ON ingest_runs (started_at DESC);

-- The last slot each scheduled job ran for, so that of several processes only one runs it.
CREATE TABLE scheduled_jobs (
    name       text PRIMARY KEY,
    last_slot  timestamptz NOT NULL
);
