"""Calibration read from the store: the agreement page's pairs, grouped by version and time."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.calibration.selectors import (
    calibration_cells,
    calibration_label_rows,
    calibration_pairs,
    calibration_rows,
    evaluator_calibration,
    pair_cells,
)
from evalhub.trends.calibration import trends_calibration
from evalhub.trends.selectors import score_trends
from tests import factories
from tests.evalhub.calibration.helpers import labelled_spans

pytestmark = pytest.mark.django_db


def test_pairs_are_grouped_by_the_version_that_produced_each_result():
    labelled_spans(
        [
            ("good", "good", 1),
            ("bad", "good", 1),
            ("good", "good", 2),
            ("bad", "bad", 2),
            ("good", None, 2),  # a person's label the judge never scored: no pair
        ]
    )
    calibration = evaluator_calibration(project=factories.project(), name="Correctness")
    assert calibration.pairs == 4
    assert [v.version for v in calibration.versions] == [2, 1]  # newest first
    v2, v1 = calibration.versions
    assert (v2.overall.pairs, v2.overall.accuracy, v2.overall.kappa) == (2, 1.0, 1.0)
    assert (v1.overall.pairs, v1.overall.accuracy) == (2, 0.5)
    assert v1.overall.matrix == [[1, 0], [1, 0]]  # people: good, bad x judge: good, bad


def test_a_trace_label_pairs_with_the_root_span_result_as_on_the_agreement_page():
    root = factories.trace()[0]
    annotations_upsert(
        items=[
            AnnotationInput("TRACE", root.trace.trace_id, "Helpful", label="yes", identifier="al"),
            AnnotationInput(
                "SPAN",
                root.span_id,
                "Helpful",
                annotator_kind="LLM",
                label="no",
                metadata={"version": 3},
            ),
        ]
    )
    calibration = evaluator_calibration(project=root.project, name="Helpful")
    (version,) = calibration.versions
    assert version.version == 3 and version.overall.pairs == 1
    assert version.overall.accuracy == 0.0


def test_pairs_over_time_per_bucket_and_within_a_range():
    start = factories.BASE_TIME.replace(hour=3)
    labelled_spans(
        [("good", "good", 1)] * 3 + [("good", "bad", 1)] * 3,
        start=start,
        step=timedelta(hours=12),
    )
    calibration = evaluator_calibration(project=None, name="Correctness", bucket="day")
    (version,) = calibration.versions
    assert [(b.start.date(), b.calibration.pairs) for b in version.buckets] == [
        ((start + timedelta(days=d)).date(), 2) for d in range(3)
    ]
    # Day 1: good/good twice; day 2: good/good, good/bad; day 3: good/bad twice.
    assert [b.calibration.accuracy for b in version.buckets] == [1.0, 0.5, 0.0]
    later = evaluator_calibration(project=None, name="Correctness", start=start + timedelta(days=1))
    assert later.pairs == 4
    rows = calibration_rows(calibration)
    assert rows[0]["bucket_start"] is None  # the version over the range
    assert {row["pairs"] for row in rows[1:]} == {2}
    labels = calibration_label_rows(calibration)
    overall_good = next(r for r in labels if r["bucket_start"] is None and r["label"] == "good")
    assert (overall_good["support"], overall_good["recall"]) == (6, 0.5)


def test_other_names_projects_and_people_are_kept_apart():
    labelled_spans([("good", "good", 1)], project="shop")
    labelled_spans([("good", "bad", 1)], project="other")
    labelled_spans([("good", "bad", 1)], name="Tone", project="shop")
    assert evaluator_calibration(project=factories.project("shop"), name="Correctness").pairs == 1
    assert evaluator_calibration(project=None, name="Correctness").pairs == 2
    assert evaluator_calibration(project=None, name="Nothing").versions == []


def test_trends_show_raw_and_corrected_rates_where_calibration_exists():
    # Calibration: the judge calls 4 of 5 real failures "fail" (Se 0.8) and 1 of 5 passes
    # "fail" (Sp 0.8). On the trend: 10 results, 4 "fail" → raw 0.4, corrected
    # (0.4 + 0.8 - 1) / (0.8 + 0.8 - 1) = 1/3.
    rows = [("fail", "fail", 1)] * 4 + [("fail", "pass", 1)] + [("pass", "fail", 1)]
    labelled_spans(rows + [("pass", "pass", 1)] * 4, name="Safety")
    project = factories.project()
    trends = score_trends(project=project, start=None, end=None, bucket="week")
    found = trends_calibration(project=project, trends=trends)
    rates = {rate.label: rate for rate in found["Safety"].rates}
    assert rates["fail"].raw == pytest.approx(0.5)  # the calibration items themselves: 5 of 10
    assert rates["fail"].corrected == pytest.approx((0.5 + 0.8 - 1) / 0.6)
    assert (
        rates["fail"].corrected_ci.low <= rates["fail"].corrected <= rates["fail"].corrected_ci.high
    )


# --- the database's counting against the agreement page's pairing ----------------------------


def _random_store(rng: random.Random) -> None:
    """People's labels and machines' results on spans, traces and sessions, with the cases the
    pairing rule distinguishes: root and child spans, a trace's own result against its root
    span's, several people, LLM and CODE, identifiers, scores without labels, odd versions."""
    items = []
    labels = ["good", "bad", "meh"]
    for index in range(12):
        start = factories.BASE_TIME + timedelta(hours=rng.randrange(0, 96))
        root, _retriever, llm = factories.trace(start=start, session_id=f"s{index % 4}")
        targets = [
            ("SPAN", root.span_id),
            ("SPAN", llm.span_id),
            ("TRACE", root.trace.trace_id),
            ("SESSION", f"s{index % 4}"),
        ]
        for kind, key in targets:
            for person in ("al", "bo"):
                if rng.random() < 0.5:
                    items.append(
                        AnnotationInput(kind, key, "Q", label=rng.choice(labels), identifier=person)
                    )
            for annotator, identifier in (("LLM", ""), ("CODE", "v"), ("LLM", "x")):
                if rng.random() < 0.4:
                    labelled = rng.random() < 0.85
                    items.append(
                        AnnotationInput(
                            kind,
                            key,
                            "Q",
                            annotator_kind=annotator,
                            label=rng.choice(labels) if labelled else None,
                            score=None if labelled else 0.5,
                            identifier=identifier,
                            metadata=rng.choice(
                                [
                                    {"version": 1},
                                    {"version": 2},
                                    {"version": "3"},
                                    {},
                                    {"version": 1.5},
                                ]
                            ),
                        )
                    )
    # Sessions are upserted by id in one project: keep each (target, name, class, identifier)
    # once, the last one, as the store would.
    unique = {}
    for item in items:
        unique[
            (item.target_kind, item.target_id, item.annotator_kind == "HUMAN", item.identifier)
        ] = item
    annotations_upsert(items=list(unique.values()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_database_counts_the_same_pairs_as_the_agreement_page(seed):
    _random_store(random.Random(seed))
    project = factories.project()
    for bucket, start, end in (
        ("day", None, None),
        ("hour", factories.BASE_TIME + timedelta(hours=20), None),
        ("week", None, factories.BASE_TIME + timedelta(hours=50)),
    ):
        expected = pair_cells(
            calibration_pairs(project=project, name="Q"), bucket=bucket, start=start, end=end
        )
        counted = calibration_cells(project=project, name="Q", bucket=bucket, start=start, end=end)
        assert +counted == +expected, (bucket, start, end)
        assert sum(expected.values()) > 0
