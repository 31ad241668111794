-- bench: the wide-row dataset, about the size of pgbench scale 50 (~750 MB of heap).
-- Deterministic: one session, setseed() first, rows generated in id order.
-- psql -v rows=N (default 1100000) sets the number of rows.
\if :{?rows}
\else
\set rows 1100000
\endif
SELECT setseed(0.5) AS seeded \gset
CREATE TABLE wide_docs (
    id       bigint PRIMARY KEY,
    title    text NOT NULL,
    body     text,
    doc      jsonb,
    blob     bytea,
    amount   numeric(18, 4),
    ratio    numeric,
    created  timestamptz NOT NULL
);
INSERT INTO wide_docs
SELECT g,
       'doc ' || g || ' ' || md5(g::text),
       -- prose-like text: 20 to 83 words from a small vocabulary (compresses like real text)
       (SELECT string_agg(w[1 + floor(random() * array_length(w, 1))::int], ' ')
          FROM generate_series(1, 20 + (g % 64)) k,
               (SELECT ARRAY['the', 'order', 'was', 'shipped', 'to', 'customer', 'after', 'payment',
                             'and', 'invoice', 'review', 'of', 'account', 'balance', 'refund', 'for',
                             'item', 'delivery', 'delayed', 'warehouse', 'in', 'region', 'north',
                             'south', 'east', 'west', 'priority', 'standard', 'express', 'note',
                             'contact', 'support', 'ticket', 'closed', 'opened', 'by', 'agent',
                             'with', 'status', 'pending', 'approved', 'rejected', 'on', 'date',
                             'quantity', 'price', 'discount', 'tax', 'total', 'currency', 'euro',
                             'dollar', 'product', 'category', 'garden', 'kitchen', 'office', 'tools',
                             'a', 'is', 'not', 'yet', 'again', 'please'] w) v),
       jsonb_build_object('id', g, 'kind', (ARRAY['order', 'refund', 'invoice', 'note'])[1 + g % 4],
                          'score', round(random()::numeric, 6), 'tags',
                          jsonb_build_array(md5(random()::text), g % 97, g % 13 = 0),
                          'owner', jsonb_build_object('name', 'user' || (g % 5000), 'active', g % 3 <> 0)),
       decode(md5(random()::text) || md5(g::text), 'hex'),
       round((random() * 1000000)::numeric, 4),
       random()::numeric * 1000,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds'
  FROM generate_series(1, :rows) g;
CREATE INDEX wide_docs_created ON wide_docs (created);
CREATE INDEX wide_docs_kind ON wide_docs ((doc ->> 'kind'), amount);
