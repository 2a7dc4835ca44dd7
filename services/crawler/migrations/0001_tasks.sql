-- The crawler's bounded context, shared by crawler (the API) and crawler-worker (the
-- checkers): tasks, one row per URL of a task (its result once checked), and the outbox
-- through which the URLs reach the work stream.
CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'ready', 'cancelled')),
    total integer NOT NULL CHECK (total >= 1),
    done integer NOT NULL DEFAULT 0 CHECK (done >= 0),      -- answered below 400
    failed integer NOT NULL DEFAULT 0 CHECK (failed >= 0),  -- with an error
    options jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CHECK (done + failed <= total),
    CHECK ((status = 'ready') = (done + failed = total AND finished_at IS NOT NULL)
           OR status = 'cancelled')
);
CREATE INDEX tasks_newest_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_newest_idx ON tasks (status, created_at DESC, id DESC);

CREATE TABLE task_urls (
    task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),  -- its place among the task's URLs
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    status_code integer,
    final_url text,
    redirects integer,
    elapsed_ms double precision,
    attempts integer,
    error_kind text CHECK (error_kind IN ('dns', 'connect', 'ssl', 'timeout', 'http',
                                          'too_many_redirects', 'body_too_large', 'blocked')),
    error_detail jsonb,
    checked_at timestamptz,  -- NULL until its one result is recorded
    PRIMARY KEY (task_id, position)
);

-- agora:include outbox
