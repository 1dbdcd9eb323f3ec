"""Identity resolution: customer_key assignment (persistent map and email index), golden customer
records (``analytics.customers``) and orders with their customer (``analytics.orders``).
See ``docs/identity.md``."""
