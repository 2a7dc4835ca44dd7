-- What engagement knows of each post: its author (comments may be deleted by the post's
-- author), whether posts deleted it, and its counts, kept in the same transaction as the
-- like or comment they count (exact under concurrency: the UPDATE serialises on the row).
-- Rows come from posts.events (post.created) or, for a post not seen yet, from posts.
CREATE TABLE posts (
    post_id bigint PRIMARY KEY CHECK (post_id > 0),
    author_id bigint NOT NULL CHECK (author_id > 0),
    deleted boolean NOT NULL DEFAULT false,
    like_count integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count integer NOT NULL DEFAULT 0 CHECK (comment_count >= 0)
);

-- One like per user and post; id orders the likers, newest first.
CREATE TABLE likes (
    id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    post_id bigint NOT NULL REFERENCES posts (post_id) ON DELETE CASCADE,
    user_id bigint NOT NULL CHECK (user_id > 0),
    username text NOT NULL CHECK (length(username) BETWEEN 1 AND 30),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX likes_by_post_idx ON likes (post_id, id DESC);

CREATE TABLE comments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts (post_id) ON DELETE CASCADE,
    author_id bigint NOT NULL CHECK (author_id > 0),
    author_username text NOT NULL CHECK (length(author_username) BETWEEN 1 AND 30),
    text text NOT NULL CHECK (length(text) BETWEEN 1 AND 1000),
    mentions jsonb NOT NULL DEFAULT '[]',   -- [{"id", "username"}], resolved when written
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A post's thread, oldest first, read by keyset (id > cursor).
CREATE INDEX comments_thread_idx ON comments (post_id, id);

-- agora:include outbox
