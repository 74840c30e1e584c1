"""Event store: SQLAlchemy Core tables, engines (SQLite WAL or PostgreSQL) and queries.

Everything that touches the database lives here, so the intake, the CLI and later the HTTP API
share one set of queries and the handlers stay free of SQL.
"""
