"""Database settings that EvalHub applies to its PostgreSQL connections (``evalhub.settings``)."""

from __future__ import annotations

import pytest
from django.db import connection

postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="JIT is PostgreSQL's")


@postgresql
@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
