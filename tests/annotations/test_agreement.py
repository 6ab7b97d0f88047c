"""Inter-annotator agreement: the statistics against hand-computed values, the pairing of raters,
and the ratings read from the store."""

from __future__ import annotations

import math
import statistics

import pytest

from annotations.agreement import (
    Rater,
    Rating,
    TargetRef,
    agreement,
    cohen_kappa,
    mean_absolute_difference,
    pearson,
    percent_agreement,
    rater_of,
)
from annotations.store.selectors import agreement_ratings
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

# --- statistics ---------------------------------------------------------------------------------


def test_kappa_of_the_textbook_two_by_two_table():
    # 50 items: both "yes" 20, A yes/B no 5, A no/B yes 10, both "no" 15.
    # p_o = 35/50 = 0.7; A says yes 25/50, B 30/50 → p_e = .5*.6 + .5*.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert percent_agreement(pairs) == pytest.approx(0.7)
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_kappa_with_three_labels():
    # A: a a b b c c ; B: a b b b c a
    # p_o = 4/6; A: a2 b2 c2, B: a2 b3 c1 → p_e = (2*2 + 2*3 + 2*1) / 36 = 12/36 = 1/3
    # kappa = (2/3 - 1/3) / (2/3) = 0.5
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "c"), ("c", "a")]
    assert cohen_kappa(pairs) == pytest.approx(0.5)


def test_kappa_is_one_for_perfect_agreement_and_negative_below_chance():
    assert cohen_kappa([("x", "x"), ("y", "y"), ("x", "x")]) == pytest.approx(1.0)
    # Always opposite: p_o = 0, p_e = 0.5 → -1
    assert cohen_kappa([("x", "y"), ("y", "x")]) == pytest.approx(-1.0)


def test_kappa_is_undefined_when_chance_agreement_is_certain_or_without_pairs():
    assert cohen_kappa([("x", "x"), ("x", "x")]) is None
    assert cohen_kappa([]) is None and percent_agreement([]) is None


def test_pearson_against_a_hand_computed_value():
    # x = 1..5, y = 2 4 5 4 5: sxy = 6, sxx = 10, syy = 6 → r = 6 / sqrt(60) = sqrt(0.6)
    pairs = list(zip([1, 2, 3, 4, 5], [2, 4, 5, 4, 5], strict=True))
    assert pearson(pairs) == pytest.approx(math.sqrt(0.6))
    assert pearson(pairs) == pytest.approx(statistics.correlation(*zip(*pairs, strict=True)))
    assert pearson([(1, 3), (2, 2), (3, 1)]) == pytest.approx(-1.0)


def test_pearson_is_undefined_for_too_few_or_constant_scores():
    assert pearson([]) is None and pearson([(1.0, 2.0)]) is None
    assert pearson([(1.0, 2.0), (1.0, 3.0)]) is None


def test_mean_absolute_difference():
    assert mean_absolute_difference([(1.0, 0.5), (0.0, 1.0)]) == pytest.approx(0.75)
    assert mean_absolute_difference([]) is None


# --- raters and rubric names --------------------------------------------------------------------


def test_raters_are_people_by_identifier_then_user_and_evaluators_by_name():
    assert rater_of(annotator_kind="HUMAN", name="q", identifier="ann", username="u").label == "ann"
    by_user = rater_of(annotator_kind="HUMAN", name="q", identifier="", username="u")
    assert by_user.label == "u" and by_user.is_human
    judge = rater_of(annotator_kind="LLM", name="q", identifier="", username=None)
    assert (judge.label, judge.is_human) == ("q", False)


# --- pairing -------------------------------------------------------------------------------------

ALICE = Rater("HUMAN:alice", "alice", "HUMAN")
BOB = Rater("HUMAN:bob", "bob", "HUMAN")
JUDGE = Rater("LLM:q:", "q", "LLM")
CHECK = Rater("CODE:q:", "q (code)", "CODE")


def span(n: int) -> TargetRef:
    return TargetRef("SPAN", f"s{n}", "t", f"span {n}")


def rate(rater, n, label=None, score=None, name="q"):
    return Rating(name=name, target=span(n), rater=rater, label=label, score=score)


def test_agreement_pairs_people_and_people_with_evaluators_never_two_evaluators():
    ratings = [
        rate(JUDGE, 1, "good"),
        rate(CHECK, 1, "good"),
        rate(BOB, 1, "good"),
        rate(ALICE, 1, "good"),
        rate(ALICE, 2, "bad"),
        rate(JUDGE, 2, "good"),
    ]
    (report,) = agreement(ratings).names
    assert report.name == "q"
    assert [(p.a.label, p.b.label, p.pairs) for p in report.pairs] == [
        ("alice", "bob", 1),
        ("alice", "q", 2),
        ("alice", "q (code)", 1),
        ("bob", "q", 1),
        ("bob", "q (code)", 1),
    ]
    alice_judge = report.pairs[1]
    assert alice_judge.kind == "Human - LLM"
    assert alice_judge.percent_agreement == pytest.approx(0.5)
    assert alice_judge.disagreement_count == 1
    (disagreement,) = alice_judge.disagreements
    assert disagreement.target == span(2)
    assert (disagreement.a.label, disagreement.b.label) == ("bad", "good")


def test_agreement_of_labels_matches_the_statistics():
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    ratings = [rate(ALICE, i, label) for i, label in enumerate(a)]
    ratings += [rate(BOB, i, label) for i, label in enumerate(b)]
    (report,) = agreement(ratings, max_disagreements=3).names
    (pair,) = report.pairs
    assert (pair.pairs, pair.label_pairs, pair.score_pairs) == (50, 50, 0)
    assert pair.percent_agreement == pytest.approx(0.7)
    assert pair.kappa == pytest.approx(0.4)
    assert pair.pearson is None and pair.mean_abs_difference is None
    assert pair.disagreement_count == 15 and len(pair.disagreements) == 3


def test_agreement_of_scores_lists_the_biggest_differences_first():
    ratings = [rate(ALICE, i, score=s) for i, s in enumerate([1, 2, 3, 4, 5])]
    ratings += [rate(BOB, i, score=s) for i, s in enumerate([2, 4, 5, 4, 5])]
    (report,) = agreement(ratings).names
    (pair,) = report.pairs
    assert pair.label_pairs == 0 and pair.percent_agreement is None and pair.kappa is None
    assert pair.pearson == pytest.approx(math.sqrt(0.6))
    assert pair.mean_abs_difference == pytest.approx(1.0)  # (1 + 2 + 2 + 0 + 0) / 5
    assert [(d.target.key, d.difference) for d in pair.disagreements] == [
        ("s1", 2.0),
        ("s2", 2.0),
        ("s0", 1.0),
    ]


def test_agreement_skips_names_with_one_rater_and_ratings_without_a_result():
    ratings = [
        rate(ALICE, 1, "good", name="solo"),
        rate(ALICE, 1, "good"),
        rate(BOB, 1, None, None),  # a note: no label, no score
    ]
    assert agreement(ratings).names == []


def test_a_raters_second_rating_of_a_target_replaces_the_first():
    ratings = [rate(ALICE, 1, "bad"), rate(ALICE, 1, "good"), rate(BOB, 1, "good")]
    (report,) = agreement(ratings).names
    assert report.pairs[0].percent_agreement == 1.0


def trace_ref(n: int) -> TargetRef:
    return TargetRef("TRACE", f"t{n}", f"t{n}", f"trace {n}")


def root_of(n: int) -> TargetRef:
    return TargetRef("SPAN", f"r{n}", f"t{n}", "root")


def test_a_trace_label_pairs_with_the_judges_trace_result_else_its_root_span_result():
    ratings = [
        Rating("q", trace_ref(1), ALICE, "good", None),
        Rating("q", trace_ref(1), JUDGE, "good", None),  # on the trace itself: it is used
        Rating("q", root_of(1), JUDGE, "bad", None, stands_for=trace_ref(1)),
        Rating("q", trace_ref(2), ALICE, "bad", None),
        Rating("q", root_of(2), JUDGE, "good", None, stands_for=trace_ref(2)),
        Rating("q", trace_ref(3), ALICE, "good", None),  # the judge has nothing: unpaired
    ]
    report = agreement(ratings)
    (entry,) = report.names
    (pair,) = entry.pairs
    assert (pair.pairs, pair.same_target_pairs, pair.root_span_pairs) == (2, 1, 1)
    assert pair.percent_agreement == pytest.approx(0.5)
    (disagreement,) = pair.disagreements
    assert disagreement.target == trace_ref(2)  # shown as the trace the person labelled
    assert (disagreement.a.label, disagreement.b.label) == ("bad", "good")
    assert (report.pairs, report.same_target_pairs, report.root_span_pairs) == (2, 1, 1)
    assert report.unpaired == 1
    assert "root span" in report.rule


def test_a_root_span_result_does_not_stand_for_the_trace_between_two_people():
    ratings = [
        Rating("q", trace_ref(1), ALICE, "good", None),
        Rating("q", root_of(1), BOB, "good", None, stands_for=trace_ref(1)),
    ]
    report = agreement(ratings)
    assert report.names == [] and report.unpaired == 2


# --- the ratings read from the store -----------------------------------------------------------


@pytest.mark.django_db
def test_agreement_ratings_reads_people_and_evaluators_on_the_same_targets():
    root, retriever, llm = factories.trace(project="shop")
    other = factories.trace(project="other")[0]

    def item(span, name, label, kind="HUMAN", identifier=""):
        return AnnotationInput(
            "SPAN", span.span_id, name, annotator_kind=kind, label=label, identifier=identifier
        )

    annotations_upsert(
        items=[
            item(root, "quality", "good", identifier="alice"),
            item(root, "quality", "bad", identifier="bob"),
            item(root, "quality", "good", kind="LLM"),
            item(retriever, "quality", "bad", kind="LLM"),  # no person annotated it
            item(llm, "quality", "good", identifier="alice"),
            item(root, "other", "good", kind="LLM"),  # a name no person used
            item(other, "quality", "good", identifier="carol"),  # another project
            AnnotationInput("SPAN", root.span_id, "note", explanation="just a note"),
        ]
    )
    ratings = agreement_ratings(project=root.project)
    seen = sorted((r.name, r.rater.label, r.target.key, r.label) for r in ratings)
    assert seen == sorted(
        [
            ("quality", "alice", root.span_id, "good"),
            ("quality", "bob", root.span_id, "bad"),
            ("quality", "quality", root.span_id, "good"),
            ("quality", "alice", llm.span_id, "good"),
        ]
    )
    assert {r.target.trace_key for r in ratings} == {root.trace.trace_id}
    assert agreement_ratings(project=root.project, name="other") == []
    (report,) = agreement(ratings).names
    assert [(p.a.label, p.b.label) for p in report.pairs] == [
        ("alice", "bob"),
        ("alice", "quality"),
        ("bob", "quality"),
    ]


@pytest.mark.django_db
def test_a_traces_queue_label_is_compared_with_the_judge_on_the_root_span():
    """People label traces (a Traces queue writes trace annotations); the judge scored spans:
    its root-span results pair with the trace labels, its results on other spans do not."""
    traces = [factories.trace(project="shop") for _ in range(4)]
    items = []
    for number, (root, _retriever, llm) in enumerate(traces):
        human = "good" if number % 2 == 0 else "bad"
        judge = "good" if number < 3 else "bad"  # agrees on traces 0, 2 and 3
        items += [
            AnnotationInput(
                "TRACE", root.trace.trace_id, "quality", label=human, identifier="alice"
            ),
            AnnotationInput("SPAN", root.span_id, "quality", annotator_kind="LLM", label=judge),
            AnnotationInput("SPAN", llm.span_id, "quality", annotator_kind="LLM", label="bad"),
        ]
    annotations_upsert(items=items)
    report = agreement(agreement_ratings(project=traces[0][0].project))
    (entry,) = report.names
    (pair,) = entry.pairs
    assert (pair.a.label, pair.b.label, pair.kind) == ("alice", "quality", "Human - LLM")
    assert (pair.pairs, pair.root_span_pairs, pair.same_target_pairs) == (4, 4, 0)
    assert pair.percent_agreement == pytest.approx(0.75)
    # alice: good bad good bad; judge: good good good bad → p_o = 3/4,
    # p_e = (2*3 + 2*1) / 16 = 1/2, kappa = (3/4 - 1/2) / (1/2) = 0.5
    assert pair.kappa == pytest.approx(0.5)
    assert {d.target.kind for d in pair.disagreements} == {"TRACE"}
    assert report.unpaired == 0


@pytest.mark.django_db
def test_a_trace_level_judge_result_is_preferred_to_the_root_span_one():
    root, _retriever, _llm = factories.trace(project="shop")
    trace_id = root.trace.trace_id
    annotations_upsert(
        items=[
            AnnotationInput("TRACE", trace_id, "quality", label="good", identifier="alice"),
            AnnotationInput("TRACE", trace_id, "quality", annotator_kind="LLM", label="good"),
            AnnotationInput("SPAN", root.span_id, "quality", annotator_kind="LLM", label="bad"),
        ]
    )
    report = agreement(agreement_ratings(project=root.project))
    (pair,) = report.names[0].pairs
    assert (pair.pairs, pair.same_target_pairs, pair.percent_agreement) == (1, 1, 1.0)
