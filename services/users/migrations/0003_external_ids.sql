-- The id a compatibility layer gave an account (socialcompat: DeathStarBench's client-
-- chosen user_id, 0 to 2^63-1). Set only at creation, through the internal route; unique,
-- so each external id names one account for as long as the account exists.
ALTER TABLE users ADD COLUMN external_id bigint CHECK (external_id >= 0);
CREATE UNIQUE INDEX users_external_id_key ON users (external_id) WHERE external_id IS NOT NULL;
