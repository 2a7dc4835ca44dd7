-- Demo data, loaded by `agora-migrate users --seed` only into an empty table.
INSERT INTO users (name, age)
SELECT name, age
FROM (VALUES ('Ivo', 25), ('Ana', 17), ('Marko', 19), ('Maja', 16), ('Iva', 22)) AS demo (name, age)
WHERE NOT EXISTS (SELECT 1 FROM users);
