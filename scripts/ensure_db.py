"""Create a PostgreSQL database if it does not exist.

    python scripts/ensure_db.py [DATABASE_URL]

The URL defaults to $DATABASE_URL. Importable: `ensure_database(url)`.
Connects to the server's `postgres` database to check and create.
"""
from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/together"


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def ensure_database(url: str) -> bool:
    """Create the URL's database if missing. True when it was created."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    if not name:
        raise SystemExit(f"No database name in {url!r}")
    maintenance = with_database(url, "postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else os.environ.get("DATABASE_URL", DEFAULT_URL)
    if ensure_database(url):
        print(f"==> created database {database_name(url)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
