"""A window's metric is exact whatever order its spans arrived in: the id range that narrows the
joins (``span_id_bounds``) only ever widens to take in a span ingested late."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evalhub.monitors.metrics import (
    filter_reads_metadata,
    metric_window,
    segment_expression,
    span_id_bounds,
)
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans
from tests.factories import BASE_TIME
from tracing.query import compile_filter

pytestmark = pytest.mark.django_db
W = 300


def _late_window() -> list:
    """10 spans in the window (3 incorrect), 10 in the next window, then 5 more spans of the
    first window ingested last (2 incorrect, on another model): the window's spans are not
    one run of ids."""
    first = labelled_spans(start=BASE_TIME, total=10, incorrect=3, seconds=100)
    labelled_spans(start=BASE_TIME + timedelta(seconds=W), total=10, incorrect=9, seconds=100)
    late = labelled_spans(
        start=BASE_TIME + timedelta(seconds=150), total=5, incorrect=2, seconds=100, model="late"
    )
    return first + late


def test_the_bounds_span_every_span_of_the_window_and_only_those_ids():
    spans = _late_window()
    project = factories.project()
    low, high = span_id_bounds(
        project=project, start=BASE_TIME, end=BASE_TIME + timedelta(seconds=W)
    )
    assert (low, high) == (min(s.pk for s in spans), max(s.pk for s in spans))
    empty = BASE_TIME - timedelta(days=1)
    assert span_id_bounds(project=project, start=empty, end=empty + timedelta(seconds=W)) is None


@pytest.mark.parametrize(
    ("flt", "by_id_range"), [("", False), ("span_kind = 'LLM'", False), ("span_kind = 'LLM'", True)]
)
def test_a_late_span_counts_in_its_window(flt, by_id_range):
    _late_window()
    common = {
        "project": factories.project(),
        "filter_q": compile_filter(flt),
        "by_id_range": by_id_range,
        "start": BASE_TIME,
        "end": BASE_TIME + timedelta(seconds=W),
    }
    rate = metric_window(
        metric="eval_label_rate", result_name="correctness", label="incorrect", **common
    )[""]
    assert (rate.samples, rate.hits) == (15, 5)
    mean = metric_window(metric="eval_mean_score", result_name="correctness", **common)[""]
    assert mean.samples == 15 and mean.value == pytest.approx(10 / 15)
    errors = metric_window(metric="error_rate", **common)[""]
    assert (errors.samples, errors.hits) == (15, 5)
    by_model = metric_window(
        metric="eval_label_rate",
        result_name="correctness",
        label="incorrect",
        segment=segment_expression("model_name"),
        **common,
    )
    assert {key: (s.samples, s.hits) for key, s in by_model.items()} == {
        "gpt-4o-mini": (10, 3),
        "late": (5, 2),
    }


def test_an_empty_window_has_no_results_and_zero_spans():
    labelled_spans(start=BASE_TIME, total=4, incorrect=1)
    common = {
        "project": factories.project(),
        "filter_q": compile_filter("span_kind = 'LLM'"),
        "start": BASE_TIME - timedelta(days=1),
        "end": BASE_TIME - timedelta(days=1) + timedelta(seconds=W),
    }
    assert metric_window(metric="eval_label_rate", result_name="correctness", **common) == {}
    assert metric_window(metric="span_count", **common)[""].value == 0


def test_which_filters_read_metadata():
    assert filter_reads_metadata("metadata.tier = 'enterprise'")
    assert filter_reads_metadata("span_kind = 'LLM' AND NOT (metadata.tier = 'free' OR x = 1)")
    assert not filter_reads_metadata("")
    assert not filter_reads_metadata("span_kind = 'LLM' AND attributes.llm.model_name = 'x'")
    assert not filter_reads_metadata("eval.correctness.label = 'incorrect'")
