-- What a post is (DeathStarBench's post_type, which socialcompat stores): a post, a
-- repost, a reply or a direct message. Numbered after issue 12, which added it, so that
-- it cannot take a version the posts service's own next migrations will use.
ALTER TABLE posts
    ADD COLUMN kind text NOT NULL DEFAULT 'post' CHECK (kind IN ('post', 'repost', 'reply', 'dm'));
