from datetime import timedelta

import pytest
from django.db import DataError, connection

from tests import factories
from tracing.models import Span
from tracing.store.bulk import spans_insert

pytestmark = pytest.mark.django_db


def _row(span: Span, **changes: object) -> dict[str, object]:
    row = {
        f.attname: getattr(span, f.attname) for f in Span._meta.concrete_fields if not f.primary_key
    }
    row.update(changes)
    return row


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_copy_falls_back_to_on_conflict_when_a_span_was_stored_meanwhile():
    (stored,) = factories.ingest([factories.span_record(name="first")])
    fresh = _row(
        stored, span_id="f" * 16, name="fresh", start_time=stored.start_time + timedelta(seconds=1)
    )
    again = _row(stored, name="changed")
    assert spans_insert([fresh, again]) is False
    assert Span.objects.get(span_id=stored.span_id).name == "first"  # kept as it was
    assert Span.objects.get(span_id="f" * 16).name == "fresh"


def test_every_row_inserted_reports_exact():
    (stored,) = factories.ingest([factories.span_record()])
    assert spans_insert([_row(stored, span_id="e" * 16)]) is True
    assert Span.objects.filter(span_id="e" * 16).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL refuses NUL")
def test_a_nul_character_is_a_database_error_and_nothing_is_written():
    """Why ``spans_ingest`` leaves such spans out before writing (``row_problem``)."""
    (stored,) = factories.ingest([factories.span_record()])
    with pytest.raises(DataError):
        spans_insert([_row(stored, span_id="d" * 16, input_value="before\x00after")])
    assert not Span.objects.filter(span_id="d" * 16).exists()
