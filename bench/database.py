"""The benches' own PostgreSQL databases: created on first use, dropped and created again with
``--reload``."""

from __future__ import annotations


def ensure_database(name: str, reload: bool) -> bool:
    """Create database ``name`` (dropping it first when ``reload``); True when it is new, so
    it must be loaded."""
    import psycopg
    from psycopg import sql

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if reload and exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return not exists
