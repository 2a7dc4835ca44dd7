-- Search's index: a copy of what posts and users publish, made for searching, fed by their
-- events and rebuildable from them (agora-reindex search). pg_trgm and unaccent come with
-- PostgreSQL (Debian's postgresql package, the postgres image); both are trusted
-- extensions, which the database's owner may create.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- English stemming, accents folded (café = cafe), for the documents and the queries alike.
CREATE TEXT SEARCH CONFIGURATION agora_search (COPY = english);
ALTER TEXT SEARCH CONFIGURATION agora_search
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;

-- One row per post that exists. `document` holds the text's words (stemmed) and, as
-- lexemes of their own, '#tag' for each hashtag and '@username' for the author and each
-- user mentioned: one GIN index answers every kind of term.
CREATE TABLE posts (
    post_id bigint PRIMARY KEY,
    author_id bigint NOT NULL,
    document tsvector NOT NULL,
    created_at timestamptz NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_document_idx ON posts USING gin (document);
-- What a reindex did not see again: rows indexed before it started.
CREATE INDEX posts_indexed_at_idx ON posts (indexed_at);

-- Posts deleted: never indexed again (a late or replayed post.created, a reindex that
-- read the post just before its deletion).
CREATE TABLE deleted_posts (
    post_id bigint PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Accounts (users with a username), searched by username or name prefix (SP-GiST: the
-- ^@ prefix operator, with the prefix a query parameter) and, for typos, by trigram
-- similarity of the username.
CREATE TABLE users (
    id bigint PRIMARY KEY,
    username text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_username_prefix_idx ON users USING spgist (lower(username));
CREATE INDEX users_name_prefix_idx ON users USING spgist (lower(name));
CREATE INDEX users_username_trgm_idx ON users USING gin (lower(username) gin_trgm_ops);
