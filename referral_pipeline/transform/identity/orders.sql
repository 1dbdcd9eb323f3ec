-- identity.order_state: which orders the stage has processed and the identity each named (hashed),
-- so that a later run knows which customers an order left, with the figures customers.sql sums. analytics.orders itself is a view
-- (schema.sql): the customer of an order is its customer record when it names one, else its guest
-- email; both are identities of identity.customer_map, whose keys never change.

-- step: order_state_delete
DELETE FROM identity.order_state
WHERE order_hash IN (SELECT hash(order_key) FROM d_orders UNION ALL SELECT order_hash FROM gone_orders);

-- step: order_state_insert
INSERT INTO identity.order_state (order_hash, identity_hash, load_seq, currency, market_id, placed_at, updated_at,
                                  net_amount, counts_as_order)
SELECT hash(o.order_key), hash(coalesce(o.customer_record_key, 'guest:' || o.email_normalized)), o.load_seq,
       o.currency, o.market_id, o.placed_at, o.updated_at, o.net_amount,
       o.status NOT IN ('cancelled', 'declined', 'incomplete') AND NOT o.is_deleted
FROM d_orders o;
