-- Social accounts: a username (unique whatever its case, 3-30 of [A-Za-z0-9_.-]) and an
-- argon2id password hash, both or neither. An account's age is optional; a user without
-- a username (the original name/age/email users) keeps a required age.
ALTER TABLE users
    ADD COLUMN username text CHECK (username ~ '^[A-Za-z0-9_.-]{3,30}$'),
    ADD COLUMN password_hash text CHECK (length(password_hash) <= 512),
    ALTER COLUMN age DROP NOT NULL,
    ADD CONSTRAINT users_account_complete CHECK ((username IS NULL) = (password_hash IS NULL)),
    ADD CONSTRAINT users_age_or_account CHECK (age IS NOT NULL OR username IS NOT NULL);
-- Lookups by username (login, mentions) and its uniqueness, without regard to case.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- agora:include outbox
