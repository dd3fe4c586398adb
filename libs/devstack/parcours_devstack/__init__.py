"""Local infrastructure for development and tests: real PostgreSQL, real Kafka-protocol broker, real SMTP."""
