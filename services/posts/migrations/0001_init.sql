-- Post ids sort by creation time and are made here, so every replica agrees:
-- milliseconds since the Unix epoch, shifted left 10 bits, OR a counter taken modulo 1024.
-- They stay below 2^53 (a browser's safe integers) until the year 2248. Two posts of one
-- millisecond get distinct ids unless 1,024 others are made in that same millisecond
-- (the primary key refuses that; compose then tries again with a new id).
CREATE SEQUENCE post_id_counter;
CREATE FUNCTION next_post_id() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 10)
        | (nextval('post_id_counter') % 1024)
$$;

CREATE TABLE posts (
    id bigint PRIMARY KEY DEFAULT next_post_id() CHECK (id < 9007199254740992),
    author_id bigint NOT NULL CHECK (author_id > 0),
    author_username text NOT NULL CHECK (length(author_username) BETWEEN 1 AND 30),
    text text NOT NULL CHECK (length(text) BETWEEN 1 AND 100000),
    mentions jsonb NOT NULL DEFAULT '[]',   -- [{"id", "username"}], resolved at compose
    hashtags text[] NOT NULL DEFAULT '{}',
    urls jsonb NOT NULL DEFAULT '[]',       -- [{"short", "original"}], as answered
    media jsonb NOT NULL DEFAULT '[]',      -- [{"id", "type"}]
    reply_to bigint,                        -- no foreign key: a reply outlives its parent
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A set of authors' posts, newest first (user timelines, rebuilds, backfill).
CREATE INDEX posts_author_idx ON posts (author_id, id DESC);

-- Short links of the URLs in posts: /s/<code> redirects to url. They go with their post.
CREATE TABLE short_links (
    code text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{11}$'),
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    position integer NOT NULL CHECK (position >= 0),
    UNIQUE (post_id, position)
);

-- agora:include outbox
