-- Who follows whom. `seq` orders a user's followers and followees newest first and is
-- the cursor of their pages (created_at can tie).
CREATE TABLE follows (
    follower_id bigint NOT NULL CHECK (follower_id > 0),
    followee_id bigint NOT NULL CHECK (followee_id > 0),
    seq bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_follower_idx ON follows (follower_id, seq DESC);
CREATE INDEX follows_followee_idx ON follows (followee_id, seq DESC);

-- Per-user counts, kept with every follow and unfollow (in its transaction), so counts
-- and "followees with at least N followers" never count rows.
CREATE TABLE follow_counts (
    user_id bigint PRIMARY KEY,
    followers integer NOT NULL DEFAULT 0 CHECK (followers >= 0),
    following integer NOT NULL DEFAULT 0 CHECK (following >= 0)
);

-- agora:include outbox
