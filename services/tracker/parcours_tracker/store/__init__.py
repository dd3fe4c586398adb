"""The tracker's database: tables and the queries on them."""
