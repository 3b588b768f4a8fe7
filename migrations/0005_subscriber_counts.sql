-- Subscribers by status, kept by triggers, so the dashboard never counts a million rows.

CREATE TABLE subscriber_counts (
    status  text PRIMARY KEY,
    n       bigint NOT NULL
);

INSERT INTO subscriber_counts (status, n) SELECT status, count(*) FROM subscribers GROUP BY status;

CREATE FUNCTION paperboy_count_subscribers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE subscriber_counts SET n = n - 1 WHERE status = OLD.status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO subscriber_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = subscriber_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER subscribers_counted AFTER INSERT OR DELETE ON subscribers
    FOR EACH ROW EXECUTE FUNCTION paperboy_count_subscribers();
CREATE TRIGGER subscribers_recounted AFTER UPDATE OF status ON subscribers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION paperboy_count_subscribers();
