"""Inter-annotator agreement: how often two annotators gave the same target the same result.

Pure functions on plain values (no queries): ``annotations.store.selectors.agreement_ratings`` reads
the ratings, ``agreement`` pairs them up. Two people (two HUMAN identifiers) are compared on
every rubric name both used on the same target; a person is also compared with each LLM or code
evaluator whose results carry that name (a result is named after its evaluator,
``annotations.naming``). Labels give percent agreement and Cohen's kappa; scores give Pearson's
r and the mean absolute difference.

Pairing (``PAIRING_RULE``): a label and a result are paired on the same span, trace or session.
Where the levels differ — a person labelled a trace (a Traces queue does), the judge scored
spans — the trace's label is paired with the judge's result on the trace's root span, unless the
judge has a result on the trace itself. Each pair says which way it was made.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

HUMAN = "HUMAN"
TRACE = "TRACE"
PAIRING_RULE = (
    "A person's label is compared with another person's, or with an evaluator's result of "
    "the same name, on the same span, trace or session. A label on a trace is compared with "
    "the evaluator's result on the trace, or — when it has none there — on the trace's root "
    "span."
)
MAX_DISAGREEMENTS = 50
SCORE_TOLERANCE = 1e-9


# --- the statistics -------------------------------------------------------------------------


def percent_agreement(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """The share of pairs whose two values are equal (0 to 1); ``None`` without pairs."""
    if not pairs:
        return None
    return sum(1 for a, b in pairs if a == b) / len(pairs)


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters' categorical values: ``(p_o - p_e) / (1 - p_e)``, where
    ``p_o`` is the observed agreement and ``p_e`` the agreement expected by chance from each
    rater's own label frequencies. ``None`` without pairs, or when chance agreement is certain
    (both raters used one and the same label throughout), where kappa is undefined."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def pearson(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Pearson's correlation coefficient of paired scores; ``None`` for fewer than two pairs or
    when either side does not vary (the coefficient is undefined)."""
    n = len(pairs)
    if n < 2:
        return None
    mean_x = math.fsum(x for x, _ in pairs) / n
    mean_y = math.fsum(y for _, y in pairs) / n
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in pairs)
    syy = math.fsum((y - mean_y) ** 2 for _, y in pairs)
    if sxx <= 0 or syy <= 0:
        return None
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in pairs)
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def mean_absolute_difference(pairs: Sequence[tuple[float, float]]) -> float | None:
    if not pairs:
        return None
    return math.fsum(abs(x - y) for x, y in pairs) / len(pairs)


# --- who rated what -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A span, trace or session, with what a link to it needs."""

    kind: str  # SPAN / TRACE / SESSION
    key: str  # its span_id / trace_id / session_id
    trace_key: str = ""  # a span's trace id
    title: str = ""  # a span's name or a trace's root span name


@dataclass(frozen=True, slots=True)
class Rater:
    key: str
    label: str
    kind: str  # HUMAN / LLM / CODE

    @property
    def is_human(self) -> bool:
        return self.kind == HUMAN


@dataclass(frozen=True, slots=True)
class Rating:
    name: str  # the rubric name (an evaluator's results carry the evaluator's name)
    target: TargetRef
    rater: Rater
    label: str | None
    score: float | None
    # An evaluator's result on a root span: the trace it stands for when a person labelled the
    # trace and the evaluator has no result on the trace itself.
    stands_for: TargetRef | None = None


def rater_of(*, annotator_kind: str, name: str, identifier: str, username: str | None) -> Rater:
    """A person by their identifier (else their user); an evaluator by the annotation name it
    writes (and identifier)."""
    if annotator_kind == HUMAN:
        if identifier:
            return Rater(key=f"HUMAN:{identifier}", label=identifier, kind=HUMAN)
        if username:
            return Rater(key=f"HUMAN-USER:{username}", label=username, kind=HUMAN)
        return Rater(key="HUMAN:", label="(no identifier)", kind=HUMAN)
    label = f"{name} ({identifier})" if identifier else name
    return Rater(key=f"{annotator_kind}:{name}:{identifier}", label=label, kind=annotator_kind)


# --- pairing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disagreement:
    target: TargetRef
    a: Rating
    b: Rating
    difference: float | None  # |score a - score b| when the pair is compared on scores


@dataclass(frozen=True, slots=True)
class PairAgreement:
    """How two raters compare on one rubric, over the targets both rated. ``root_span_pairs``
    of the ``pairs`` paired a trace's label with the trace's root-span result; the others are
    on the same target."""

    a: Rater
    b: Rater
    pairs: int
    label_pairs: int
    percent_agreement: float | None
    kappa: float | None
    score_pairs: int
    pearson: float | None
    mean_abs_difference: float | None
    disagreement_count: int
    disagreements: list[Disagreement] = field(default_factory=list)
    root_span_pairs: int = 0

    @property
    def kind(self) -> str:
        return "Human - human" if self.b.is_human else f"Human - {self.b.kind}"

    @property
    def same_target_pairs(self) -> int:
        return self.pairs - self.root_span_pairs


@dataclass(frozen=True, slots=True)
class NameAgreement:
    name: str
    pairs: list[PairAgreement]


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """Every rubric's pairs of raters, with how the pairs were found: ``pairs`` in all, of
    which ``root_span_pairs`` paired a trace's label with a root-span result; ``unpaired``
    counts people's labels that found nobody to be compared with."""

    names: list[NameAgreement]
    pairs: int
    root_span_pairs: int
    unpaired: int
    rule: str = PAIRING_RULE

    @property
    def same_target_pairs(self) -> int:
        return self.pairs - self.root_span_pairs


def _ordered(x: Rating, y: Rating) -> tuple[Rating, Rating]:
    """People before evaluators, then by name, so a pair always reads the same way."""
    if (not x.rater.is_human, x.rater.label, x.rater.key) <= (
        not y.rater.is_human,
        y.rater.label,
        y.rater.key,
    ):
        return x, y
    return y, x


def _pair(
    a: Rater, b: Rater, compared: list[tuple[Rating, Rating]], max_disagreements: int
) -> PairAgreement:
    labels: list[tuple[str, str]] = [
        (x.label, y.label) for x, y in compared if x.label is not None and y.label is not None
    ]
    scores: list[tuple[float, float]] = [
        (x.score, y.score) for x, y in compared if x.score is not None and y.score is not None
    ]
    by_label: list[Disagreement] = []
    by_score: list[Disagreement] = []
    for x, y in compared:
        if x.label is not None and y.label is not None:
            if x.label != y.label:
                difference = (
                    abs(x.score - y.score) if x.score is not None and y.score is not None else None
                )
                by_label.append(Disagreement(x.target, x, y, difference))
        elif x.score is not None and y.score is not None:
            difference = abs(x.score - y.score)
            if difference > SCORE_TOLERANCE:
                by_score.append(Disagreement(x.target, x, y, difference))
    by_score.sort(key=lambda d: -(d.difference or 0.0))
    disagreements = by_label + by_score
    return PairAgreement(
        a=a,
        b=b,
        pairs=len(compared),
        label_pairs=len(labels),
        percent_agreement=percent_agreement(labels),
        kappa=cohen_kappa(labels),
        score_pairs=len(scores),
        pearson=pearson(scores),
        mean_abs_difference=mean_absolute_difference(scores),
        disagreement_count=len(disagreements),
        disagreements=disagreements[:max_disagreements],
        root_span_pairs=sum(1 for x, y in compared if x.target != y.target),
    )


def agreement(
    ratings: Iterable[Rating], *, max_disagreements: int = MAX_DISAGREEMENTS
) -> AgreementReport:
    """Per rubric name (sorted), each pair of raters who rated the same targets — two people,
    or a person and an evaluator; never two evaluators — with their statistics and the targets
    they disagree on (labels that differ; else scores that differ, biggest difference first).
    A rater's second rating of the same target and name replaces the first. A person's label
    on a trace is also paired with an evaluator's root-span result that ``stands_for`` the
    trace, when that evaluator has no result on the trace itself (``PAIRING_RULE``)."""
    by_name: dict[str, dict[TargetRef, dict[str, Rating]]] = {}
    stand_ins: dict[str, dict[TargetRef, dict[str, Rating]]] = {}
    for rating in ratings:
        if rating.label is None and rating.score is None:
            continue
        targets = by_name.setdefault(rating.name, {})
        targets.setdefault(rating.target, {})[rating.rater.key] = rating
        if rating.stands_for is not None and not rating.rater.is_human:
            traces = stand_ins.setdefault(rating.name, {})
            traces.setdefault(rating.stands_for, {})[rating.rater.key] = rating
    result = []
    paired: set[tuple[str, TargetRef, str]] = set()
    people = 0
    for name in sorted(by_name):
        compared: dict[tuple[str, str], tuple[Rater, Rater, list[tuple[Rating, Rating]]]] = {}
        for target, target_ratings in by_name[name].items():
            raters = dict(target_ratings)
            people += sum(1 for rating in raters.values() if rating.rater.is_human)
            if target.kind == TRACE:
                for key, rating in stand_ins.get(name, {}).get(target, {}).items():
                    raters.setdefault(key, rating)  # a result on the trace itself comes first
            for x, y in combinations(raters.values(), 2):
                first, second = _ordered(x, y)
                if not first.rater.is_human:
                    continue  # two evaluators: not what this report is for
                key = (first.rater.key, second.rater.key)
                entry = compared.setdefault(key, (first.rater, second.rater, []))
                entry[2].append((first, second))
                for rating in (first, second):
                    if rating.rater.is_human:
                        paired.add((name, target, rating.rater.key))
        pairs = [
            _pair(a, b, items, max_disagreements)
            for a, b, items in sorted(
                compared.values(),
                key=lambda entry: (not entry[1].is_human, entry[0].label, entry[1].label),
            )
        ]
        if pairs:
            result.append(NameAgreement(name=name, pairs=pairs))
    every_pair = [pair for entry in result for pair in entry.pairs]
    return AgreementReport(
        names=result,
        pairs=sum(pair.pairs for pair in every_pair),
        root_span_pairs=sum(pair.root_span_pairs for pair in every_pair),
        unpaired=people - len(paired),
    )


__all__ = [
    "MAX_DISAGREEMENTS",
    "PAIRING_RULE",
    "AgreementReport",
    "Disagreement",
    "NameAgreement",
    "PairAgreement",
    "Rater",
    "Rating",
    "TargetRef",
    "agreement",
    "cohen_kappa",
    "mean_absolute_difference",
    "pearson",
    "percent_agreement",
    "rater_of",
]
