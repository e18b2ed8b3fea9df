"""aza-pg: a PostgreSQL container entrypoint that tunes PostgreSQL to the container it runs in."""

__version__ = "0.1.0"
