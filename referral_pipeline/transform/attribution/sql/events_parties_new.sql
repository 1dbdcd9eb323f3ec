-- TEMP ev_parties (incremental events run): the party values (kind 'email' | 'id') whose
-- resolution may have changed since the last run. identity.customer_map and identity.email_index
-- only grow and never change a row, and a party resolves by its email in the index, by its id as a
-- customer_key (a customer exists from the run that maps its first identity), or by its id as
-- '<source>:<id>' in the map (one key, else ambiguous): only the rows added since the last run
-- (identity.map_seq above the mark) can change a resolution: their emails, keys and record ids.
-- Inputs: identity.email_index, identity.customer_map. Parameters: $map_wm.
SELECT 'email' AS kind, email_normalized AS v FROM identity.email_index WHERE map_seq > $map_wm
UNION ALL
SELECT 'id', customer_key FROM identity.customer_map WHERE map_seq > $map_wm
UNION ALL
SELECT 'id', substr(identity_key, strpos(identity_key, ':') + 1) FROM identity.customer_map WHERE map_seq > $map_wm
