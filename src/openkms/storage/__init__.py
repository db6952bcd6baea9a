"""Storage: repository protocol, the in-memory fake, SQLite (embedded default)."""
