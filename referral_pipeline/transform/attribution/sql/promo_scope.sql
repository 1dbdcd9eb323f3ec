-- TEMP promo_scope (incremental run): the codes to re-validate: digest new, changed or gone
-- (promo_inputs vs ops.promo_code_inputs). Inputs: promo_inputs, ops.promo_code_inputs.
SELECT coalesce(n.code, o.code) AS code
FROM promo_inputs n
FULL OUTER JOIN ops.promo_code_inputs o ON o.code = n.code
WHERE n.digest IS DISTINCT FROM o.digest OR n.rows IS DISTINCT FROM o.rows
