-- Salesforce Orders -> staging.refunds (docs/sources/salesforce.md, "Refunds and cancellations").
-- Salesforce keeps no refund records: an Order with Refunded_Amount__c > 0 yields a refund row
-- '<order id>:refund' (amount = Refunded_Amount__c), and an Order with Status 'Cancelled' a
-- cancellation row '<order id>:cancel' (amount = what was charged and not yet refunded).
-- created_at = the SystemModstamp of the order version in which the refund or cancellation was
-- first seen (kept from the existing staging row, so later edits of the order do not move it).
-- Only orders that stage cleanly produce rows; bad orders are quarantined by salesforce_orders.sql.
-- The orders query is spliced in as sf_orders by referral_pipeline.sources.salesforce.
WITH sf_orders AS (
{orders_sql}
),
events AS (
    SELECT o.*, 'refund' AS kind, o.source_order_id || ':refund' AS refund_id, o.refunded_raw AS amount
    FROM sf_orders o WHERE o.quarantine_reason IS NULL AND o.refunded_raw > 0
    UNION ALL
    SELECT o.*, 'cancellation' AS kind, o.source_order_id || ':cancel' AS refund_id,
           greatest(o.charged - o.refunded_raw, 0) AS amount
    FROM sf_orders o WHERE o.quarantine_reason IS NULL AND o.status_raw = 'Cancelled'
)
SELECT e.source || ':' || e.refund_id AS refund_key,
       e.order_key,
       e.source,
       e.refund_id AS source_refund_id,
       e.amount,
       e.currency,
       coalesce(r.created_at, e.stamp, e.placed_at) AS created_at,
       e.status_raw AS reason,
       e.kind,
       e.load_seq,
       e.source_order_id AS source_id,
       e.raw_payload,
       CAST(NULL AS VARCHAR) AS quarantine_reason,
       CAST(NULL AS VARCHAR) AS quarantine_detail
FROM events e
LEFT JOIN staging.refunds r ON r.refund_key = e.source || ':' || e.refund_id
