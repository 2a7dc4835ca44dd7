CREATE TABLE brands (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- "Acme" and "acme" are the same brand.
CREATE UNIQUE INDEX brands_name_key ON brands (lower(name));

CREATE TABLE products (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price numeric(12, 2) NOT NULL CHECK (price >= 0),
    quantity integer NOT NULL CHECK (quantity >= 0),
    brand_id bigint REFERENCES brands (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_brand_id_idx ON products (brand_id);
