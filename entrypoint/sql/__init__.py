"""SQL the entrypoint runs, composed with psycopg.sql (never string formatting)."""
