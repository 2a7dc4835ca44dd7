CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    age integer NOT NULL CHECK (age BETWEEN 0 AND 150),
    email text CHECK (length(email) <= 254),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Email addresses are compared without regard to case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_age_idx ON users (age);
