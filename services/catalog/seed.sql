-- Demo data, loaded by `agora-migrate catalog --seed` only into an empty catalog.
INSERT INTO products (name, price, quantity)
SELECT name, price, quantity
FROM (VALUES
    ('Laptop', 5000.00, 10),
    ('Mouse', 100.00, 50),
    ('Keyboard', 200.00, 30),
    ('Monitor', 1000.00, 15),
    ('Headphones', 50.00, 40)
) AS demo (name, price, quantity)
WHERE NOT EXISTS (SELECT 1 FROM products) AND NOT EXISTS (SELECT 1 FROM brands);
