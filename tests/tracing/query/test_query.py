"""The filter language: what each filter matches on a fixed data set, its error messages, and
fuzzing that no input escapes as anything but ``FilterError`` or breaks the database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import Annotation
from tests import factories
from tracing.models import Span
from tracing.query import FIELDS, FilterError, compile_filter

pytestmark = pytest.mark.django_db

A = {"a.agent", "a.retrieve", "a.llm"}
B = {"b.agent", "b.retrieve", "b.llm"}
ALL = A | B | {"tool"}


@pytest.fixture
def spans() -> dict[str, Span]:
    """Two agent traces (a: OK, gpt-4o, Nov 20; b: ERROR, gpt-4o-mini, Oct 15), a lone tool
    span, and evaluations on them. Keys name the spans in the expectations below."""
    a = factories.trace(
        session_id="abc",
        model="gpt-4o",
        metadata={"region": "us-west", "tier": 2, "beta": True},
    )
    b = factories.trace(
        start=datetime.fromisoformat("2026-10-15T08:00:00+00:00"),
        session_id="def",
        status_code="ERROR",
        llm_latency_ms=1500,
        model="gpt-4o-mini",
        metadata={"region": "eu-central", "tier": "2", "nested": {"x": [1, 2]}},
        input_value="Where is my parcel?",
        output_value="In transit",
    )
    tool = factories.ingest(
        [
            factories.span_record(
                name="tool-call",
                kind="TOOL",
                start=datetime.fromisoformat("2026-10-01T00:00:00+00:00"),
                status_code="ERROR",
                status_message="boom",
                input_value=None,
                output_value=None,
                session_id="abc",
                metadata={"my key": 1},
                attributes={
                    "tag.tags": ["vip", "beta"],
                    "user.id": "u1",
                    "llm.token_count.total": 5000,
                },
            )
        ]
    )
    named = {
        **{f"a.{s.name}": s for s in a},
        **{f"b.{s.name}": s for s in b},
        "tool": tool[0],
    }
    assert set(named) == ALL

    def evaluation(span: str, name: str, kind: str = "LLM", identifier: str = "", **values):  # type: ignore[no-untyped-def]
        Annotation.objects.create(
            project=named[span].project,
            target_kind="SPAN",
            span=named[span],
            name=name,
            annotator_kind=kind,
            identifier=identifier,
            **values,
        )

    evaluation("a.llm", "Correctness", label="correct", score=1.0)
    evaluation("a.llm", "Hallucination", score=0.2, explanation="Grounded in the documents")
    evaluation("a.llm", "Quality", "HUMAN", label="good", score=0.9)
    evaluation("a.llm", "Q&A Correctness", "CODE", label="correct")
    evaluation("a.agent", "Correctness", score=0.5)  # a score, no label
    evaluation("b.llm", "Correctness", label="incorrect", score=0.0)
    evaluation("b.llm", "Correctness", "HUMAN", identifier="alice", label="correct")
    evaluation("b.llm", "Hallucination", score=0.8)
    evaluation("b.llm", "Quality", "HUMAN", label="bad", score=0.3)
    evaluation("b.agent", "Correctness", label="correct", score=1.0)
    return named


def matching(spans: dict[str, Span], text: str) -> set[str]:
    ids = set(Span.objects.filter(compile_filter(text)).values_list("id", flat=True))
    return {name for name, span in spans.items() if span.id in ids}


CASES = [
    # The examples of the issue.
    ("status_code = 'ERROR' AND eval.Correctness.label = 'correct'", {"b.agent"}),
    ("latency_ms > 1000", {"b.agent", "b.llm"}),
    ("annotation.Quality.label = 'good'", {"a.llm"}),
    (
        "span_kind = 'LLM' OR span_kind IN ('TOOL', 'RETRIEVER')",
        {"a.llm", "a.retrieve", "b.llm", "b.retrieve", "tool"},
    ),
    ("attributes.llm.model_name = 'gpt-4o'", {"a.llm"}),
    ("metadata.region = 'us-west'", {"a.agent", "a.llm"}),
    ("eval.Hallucination.score < 0.5", {"a.llm"}),
    ("input CONTAINS 'refund'", A),
    ("parent_id IS NULL", {"a.agent", "b.agent", "tool"}),
    ("eval.Correctness.label IS NOT NULL", {"a.llm", "b.llm", "b.agent"}),
    ("NOT (status_code = 'OK')", {"b.agent", "b.llm", "tool"}),
    ("name != 'retrieve'", ALL - {"a.retrieve", "b.retrieve"}),
    ("eval.\"Q&A Correctness\".label = 'correct'", {"a.llm"}),
    ("session_id = 'abc' AND start_time >= '2026-11-01T00:00:00Z'", A),
    ("llm.token_count.total > 1000", {"tool"}),
    # Phoenix's Python spelling.
    ("span_kind == 'LLM' and evals['Correctness'].label == 'correct'", {"a.llm"}),
    ("annotations['Quality'].score >= 0.5", {"a.llm"}),
    ("'refund' in input", A),
    ("'refund' not in output", {"a.agent", "a.llm", "b.agent", "b.llm"}),
    ("parent_id is None", {"a.agent", "b.agent", "tool"}),
    ("parent_id is not None", {"a.retrieve", "a.llm", "b.retrieve", "b.llm"}),
    ("not (span_kind == 'LLM') and name != 'agent'", {"a.retrieve", "b.retrieve", "tool"}),
    ("metadata['region'] == 'eu-central'", {"b.agent", "b.llm"}),
    # Keywords in any case; every spelling of not-equal; precedence NOT > AND > OR.
    ("latency_ms > 1000 AnD name = 'llm'", {"b.llm"}),
    ("name <> 'agent' and name IS NOT 'llm'", {"a.retrieve", "b.retrieve", "tool"}),
    ("name = 'tool-call' or name = 'llm' and status_code = 'ERROR'", {"tool", "b.llm"}),
    ("(name = 'tool-call' or name = 'llm') and status_code = 'ERROR'", {"tool", "b.llm"}),
    ("(name = 'agent' or name = 'llm') and status_code = 'OK'", {"a.agent", "a.llm"}),
    ("not name = 'agent' and not name = 'llm'", {"a.retrieve", "b.retrieve", "tool"}),
    ("NOT name = 'agent' OR name = 'agent'", ALL),
    ("status_code = 'error'", {"b.agent", "b.llm", "tool"}),
    ("name in ('agent', \"retrieve\",)", {"a.agent", "a.retrieve", "b.agent", "b.retrieve"}),
    ("name not in ('agent', 'retrieve')", {"a.llm", "b.llm", "tool"}),
    ("name = 'agent' and name = null", set()),
    # Text: CONTAINS is case-sensitive, ICONTAINS is not; missing values never compare.
    ("output CONTAINS 'Refund'", {"a.agent", "a.llm"}),
    ("output contains 'refund'", set()),
    ("output ICONTAINS 'REFUND'", {"a.agent", "a.llm"}),
    ("output NOT CONTAINS 'transit'", {"a.agent", "a.llm"}),
    ("output != 'In transit'", {"a.agent", "a.llm"}),
    ("NOT (output = 'In transit')", ALL - {"b.agent", "b.llm"}),
    ("output IS NULL", {"a.retrieve", "b.retrieve", "tool"}),
    ("input = 'What is the refund policy?'", A),
    ("name contains '_'", set()),
    ("name icontains '%'", set()),
    ("status_message = 'boom'", {"tool"}),
    ("user_id = 'u1'", {"tool"}),
    ("user_id != 'u1'", set()),
    ("user_id IS NULL", ALL - {"tool"}),
    ("model_name = 'gpt-4o-mini'", {"b.llm"}),
    ("llm.model_name = 'gpt-4o'", {"a.llm"}),
    ("model_name IS NULL", ALL - {"a.llm", "b.llm"}),
    ("session_id = 'abc'", A | {"tool"}),
    ("session.id = 'def'", B),
    ("name > 'r' and name < 's'", {"a.retrieve", "b.retrieve"}),
    # Numbers and integers, including values the columns cannot hold.
    ("latency_ms >= 1500 and latency_ms <= 1700", {"b.agent", "b.llm"}),
    ("latency_ms > '1000'", {"b.agent", "b.llm"}),
    ("latency_ms < 1e308", ALL),
    ("latency_ms > -1.5e3", ALL),
    ("llm.token_count.total = 120", {"a.llm", "b.llm"}),
    ("total_tokens = 120.0", {"a.llm", "b.llm"}),
    ("total_tokens = 120.5", set()),
    ("total_tokens != 120.5", {"a.llm", "b.llm", "tool"}),
    ("total_tokens > 119.5 and total_tokens < 120.5", {"a.llm", "b.llm"}),
    ("total_tokens >= 119.5 and total_tokens <= 120.5", {"a.llm", "b.llm"}),
    ("total_tokens < 99999999999999999999999999", {"a.llm", "b.llm", "tool"}),
    ("total_tokens > 99999999999999999999999999", set()),
    ("total_tokens > -99999999999999999999999999", {"a.llm", "b.llm", "tool"}),
    ("NOT (total_tokens > 1e30)", ALL),
    ("total_tokens in (120, 5000.0, 1.5, 1e40)", {"a.llm", "b.llm", "tool"}),
    ("prompt_tokens = 100 and completion_tokens = 20", {"a.llm", "b.llm"}),
    ("llm.token_count.prompt IS NULL", ALL - {"a.llm", "b.llm"}),
    # Dates: ISO 8601, with or without zone (UTC).
    ("start_time < '2026-11-01'", B | {"tool"}),
    (
        "start_time >= '2026-11-20T13:00:00+01:00' and start_time < '2026-11-20T12:00:00.050'",
        {
            "a.agent",
            "a.retrieve",
        },
    ),
    ("end_time > '2026-10-15T08:00:01Z'", A | {"b.agent", "b.llm"}),
    # JSON paths: attributes (nested, list positions), metadata; types compare strictly.
    ("attributes.llm.input_messages.0.message.role = 'user'", {"a.llm", "b.llm"}),
    ("llm.input_messages[0].message.role = 'user'", {"a.llm", "b.llm"}),
    ("llm.input_messages.1.message.role = 'user'", set()),
    ("retrieval.documents.0.document.score > 0.9", {"a.retrieve", "b.retrieve"}),
    ("attributes.retrieval.documents.0.document.id = 'doc-1'", {"a.retrieve", "b.retrieve"}),
    ("attributes.llm.token_count.prompt >= 100", {"a.llm", "b.llm"}),
    ("openinference.span.kind = 'TOOL'", {"tool"}),
    ("metadata.tier = 2", {"a.agent", "a.llm"}),
    ("metadata.tier = 2.0", {"a.agent", "a.llm"}),
    ("metadata.tier = '2'", {"b.agent", "b.llm"}),
    ("metadata.tier > 1", {"a.agent", "a.llm"}),
    ("metadata.tier < 10", {"a.agent", "a.llm"}),
    ("metadata.tier >= '1'", {"b.agent", "b.llm"}),
    ("metadata.tier < '3'", {"b.agent", "b.llm"}),
    ("metadata.tier in (2, 'x')", {"a.agent", "a.llm"}),
    ("metadata.tier in ('2', 7)", {"b.agent", "b.llm"}),
    ("metadata.tier not in (3)", {"a.agent", "a.llm"}),
    ("metadata.beta = true", {"a.agent", "a.llm"}),
    ("metadata.beta = 1", set()),
    ("metadata.beta != false", {"a.agent", "a.llm"}),
    ("metadata.region != 'us-west'", {"b.agent", "b.llm"}),
    ("NOT (metadata.region = 'us-west')", ALL - {"a.agent", "a.llm"}),
    ("metadata.region CONTAINS 'west'", {"a.agent", "a.llm"}),
    ("metadata.region CONTAINS 'WEST'", set()),
    ("metadata.region ICONTAINS 'WEST'", {"a.agent", "a.llm"}),
    ("metadata.region NOT CONTAINS 'west'", {"b.agent", "b.llm"}),
    ("metadata.nested.x CONTAINS 2", {"b.agent", "b.llm"}),
    ("2 in metadata.nested.x", {"b.agent", "b.llm"}),
    ("metadata.nested.x.1 = 2", {"b.agent", "b.llm"}),
    ("metadata.nested.x CONTAINS 3", set()),
    ('metadata."my key" = 1', {"tool"}),
    ("metadata['my key'] IS NOT NULL", {"tool"}),
    ("metadata.region IS NULL", {"a.retrieve", "b.retrieve", "tool"}),
    ("metadata.missing.deeper = 'x'", set()),
    ("NOT (metadata.missing = 'x')", ALL),
    # Tags.
    ("tags CONTAINS 'vip'", {"tool"}),
    ("'beta' in tags", {"tool"}),
    ("tags IN ('nope', 'vip')", {"tool"}),
    ("'vip' not in tags", ALL - {"tool"}),
    ("tags IS NULL", ALL - {"tool"}),
    ("tag.tags IS NOT NULL", {"tool"}),
    # Evaluations and annotations.
    ("eval.Correctness.label = 'correct'", {"a.llm", "b.agent"}),
    # annotation.X is a person's: alice's "correct" on b.llm, not the judge's.
    ("annotation.Correctness.label = 'correct'", {"b.llm"}),
    ("annotations['Correctness'].label == 'incorrect'", set()),
    ("evals['Correctness'].label == 'incorrect'", {"b.llm"}),
    ("annotation.Correctness IS NOT NULL", {"b.llm"}),
    ("eval.Correctness.label != 'correct'", {"b.llm"}),
    ("eval.Correctness.label IS NULL", ALL - {"a.llm", "b.llm", "b.agent"}),
    ("NOT (eval.Correctness.label = 'correct')", ALL - {"a.llm", "b.agent"}),
    ("eval.Correctness IS NOT NULL", {"a.agent", "a.llm", "b.agent", "b.llm"}),
    ("evals['Correctness'] is None", {"a.retrieve", "b.retrieve", "tool"}),
    ("eval.Correctness.score >= 0.5", {"a.agent", "a.llm", "b.agent"}),
    ("eval.Correctness.score = '0.5'", {"a.agent"}),
    ("eval.Correctness.label IN ('incorrect', 'maybe')", {"b.llm"}),
    ("eval.Hallucination.explanation CONTAINS 'documents'", {"a.llm"}),
    ("eval.Quality.label = 'good'", set()),  # a human label, not an evaluation
    ("eval.Hallucination.score > 0.5 OR annotation.Quality.score > 0.5", {"a.llm", "b.llm"}),
    # Empty filters match everything.
    ("", ALL),
    ("   \n\t ", ALL),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_filter_matches(spans: dict[str, Span], text: str, expected: set[str]) -> None:
    assert matching(spans, text) == expected


def test_trace_id(spans: dict[str, Span]) -> None:
    trace_id = spans["b.llm"].trace.trace_id
    assert matching(spans, f"trace_id = '{trace_id}'") == B
    assert matching(spans, f'span_id = "{spans["tool"].span_id}"') == {"tool"}


def test_string_escapes(spans: dict[str, Span]) -> None:
    assert matching(spans, r"input = 'What is the refund policy\?'") == A
    assert matching(spans, r"""name = 'it\'s' or name = "say \"hi\"" """) == set()
    assert matching(spans, r"""name = 'tool\-call' or name = "tool\u" """) == {"tool"}
    assert matching(spans, 'input = "What is the refund policy?"') == A


def test_empty_filter_is_q() -> None:
    assert compile_filter("") == compile_filter("  ")
    assert not compile_filter("")


def test_postgres_equality_uses_containment_for_the_gin_index(spans: dict[str, Span]) -> None:
    sql = str(Span.objects.filter(compile_filter("metadata.region = 'us-west'")).query)
    if connection.vendor == "postgresql":
        assert "@>" in sql
    else:
        assert "@>" not in sql
    assert "us-west" in sql  # shown in the debug SQL, but sent as a parameter:
    compiled, params = (
        Span.objects.filter(compile_filter("metadata.region = 'us-west'"))
        .query.get_compiler(using="default")
        .as_sql()
    )
    assert "us-west" not in compiled
    assert any("us-west" in str(p) for p in params)


def test_user_text_never_reaches_sql(spans: dict[str, Span]) -> None:
    hostile = "x'; DROP TABLE tracing_span; --"
    for text in (
        f'name = "{hostile}"',
        f'metadata."{hostile}" = 1',
        f'eval."{hostile}".label = "{hostile}"',
        f'input contains "{hostile}"',
        f'attributes.a."{hostile}" contains "{hostile}"',
    ):
        compiled, _params = (
            Span.objects.filter(compile_filter(text)).query.get_compiler(using="default").as_sql()
        )
        assert "DROP" not in compiled
        assert matching(spans, text) == set()
    assert Span.objects.count() == len(ALL)


# --- errors --------------------------------------------------------------------------------


def error_of(text: str) -> FilterError:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_unknown_field_suggests_the_nearest() -> None:
    error = error_of("latncy_ms > 1000")
    assert error.message == "unknown field 'latncy_ms' — did you mean 'latency_ms'?"
    assert error.position == 1
    assert str(error) == "unknown field 'latncy_ms' at column 1 — did you mean 'latency_ms'?"


def test_unknown_field_later_in_the_filter() -> None:
    error = error_of("name = 'x' and metdata.region = 'y'")
    assert error.position == 16
    assert error.message == "unknown field 'metdata.region' — did you mean 'metadata.region'?"
    assert error_of("span_knd = 'LLM'").message.endswith("did you mean 'span_kind'?")
    assert "fields include" in error_of("zzzzzz = 1").message


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("latency_ms >", 13, ["end of the filter", "expected a value"]),
        ("latency_ms > ", 13, ["end of the filter", "expected a value"]),
        ("name = 'x' foo", 12, ["unexpected 'foo'", "expected AND, OR or the end"]),
        ("(name = 'x'", 12, ["end of the filter", "')'"]),
        ("name = 'x", 8, ["unterminated string"]),
        ("name ! 'x'", 6, ["unexpected character '!'", "expected an operator"]),
        ("name = 'x' and", 15, ["expected a condition"]),
        ("name in 'x'", 9, ["expected '('"]),
        ("= 5", 1, ["unexpected '='", "expected a condition"]),
        ("name = 'x' and (or)", 19, ["unexpected ')'", "expected an operator"]),
    ],
)
def test_syntax_errors_say_where_and_what(text: str, position: int, words: list[str]) -> None:
    error = error_of(text)
    assert error.position == position, str(error)
    for word in words:
        assert word in str(error)
    assert f"at column {position}" in str(error)
    assert "Token" not in str(error) and "Expected one of" not in str(error)


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("latency_ms > 'abc'", 14, "latency_ms is a number, but 'abc' is not a number"),
        ("latency_ms CONTAINS 'x'", 12, "CONTAINS does not apply to latency_ms (a number)"),
        ("latency_ms = true", 14, "latency_ms is a number, but true is a boolean"),
        (
            "total_tokens > 'nan'",
            16,
            "total_tokens is a whole number, but 'nan' is not a finite number",
        ),
        ("name = true", 8, "name is text, but true is a boolean"),
        ("start_time > 'yesterday'", 14, "start_time is a date and time, but 'yesterday' is not"),
        ("start_time > 5", 14, "start_time is a date and time, but 5 is a number"),
        ("start_time > '0001-01-01T00:00:00+01:00'", 14, "is out of range"),
        ("span_kind < 'LLM'", 11, "< does not apply to span_kind"),
        ("metadata.flag < true", 15, "< cannot compare metadata.flag with a boolean"),
        ("eval.Correctness.foo = 1", 18, "unknown eval attribute 'foo'"),
        ("eval.Correctness = 'x'", 18, "eval.Correctness needs an attribute"),
        ("eval = 'x'", 1, "eval needs an annotation name"),
        ("eval.a.b.label = 'x'", 10, "unexpected 'label'"),
        ("metadata = 'x'", 1, "metadata needs a key"),
        ("tags = 'x'", 6, "= does not apply to tags (a list)"),
        ("name in ('a', null)", 15, "null cannot be compared this way"),
        ("latency_ms > 1e999", 14, "the number 1e999 is too large"),
        ("name = 'a\\0b'", 8, "NUL"),
        ("name = '\ud800'", 8, "a string contains an invalid character"),
        ("metadata.'\x00' = 1", 10, "NUL"),
        ('metadata."a\\"b" = 1', 10, "a key cannot contain a double quote"),
        ("attributes.a.99999999999 = 1", 14, "list position 99999999999 is too large"),
    ],
)
def test_type_errors_name_the_field(text: str, position: int, message: str) -> None:
    error = error_of(text)
    assert error.position == position, str(error)
    if message:
        assert message in str(error)


def test_enum_value_error_suggests_the_nearest() -> None:
    assert error_of("status_code = 'EROR'").hint == "did you mean 'ERROR'?"


def test_eval_attribute_error_lists_the_choices() -> None:
    error = error_of("eval.Correctness.lable = 'x'")
    assert error.hint == "use label, score or explanation"


def test_limits() -> None:
    assert "too long" in str(error_of("name = 'x' or " * 1000 + "name = 'y'"))
    deep = "(" * 60 + "name = 'x'" + ")" * 60
    assert "nested too deeply" in str(error_of(deep))
    assert "nested too deeply" in str(error_of("not " * 60 + "name = 'x'"))
    assert "nested too deeply" in str(error_of("(" * 4000 + "name = 'x'" + ")" * 4000))
    assert "end of the filter" in str(error_of("(" * 5000))
    compile_filter("(" * 50 + "name = 'x'" + ")" * 50)
    assert "too many conditions" in str(error_of(" or ".join(["a = 1"] * 400)))


def test_largest_filters_run(spans: dict[str, Span]) -> None:
    """At the limits the SQL stays within what SQLite and PostgreSQL accept."""
    many = " or ".join(f"metadata.k{i} contains 'v{i}'" for i in range(300))
    assert matching(spans, many) == set()
    values = ", ".join(str(i) for i in range(1500))
    assert matching(spans, f"metadata.region in ({values}, 'us-west')") == {"a.agent", "a.llm"}
    nested = "(" * 50 + "name = 'llm'" + ")" * 50
    assert matching(spans, nested) == {"a.llm", "b.llm"}


def test_fields_catalogue() -> None:
    for name in (
        "name",
        "span_kind",
        "status_code",
        "latency_ms",
        "input",
        "output",
        "session_id",
        "llm.token_count.total",
        "total_tokens",
        "tags",
        "attributes.<path>",
        "metadata.<path>",
        "eval.<name>.label",
        "annotation.<name>.score",
    ):
        assert FIELDS[name].description
    assert FIELDS["latency_ms"].type == "number"
    assert FIELDS["start_time"].type == "datetime"
    assert FIELDS["total_tokens"].alias_of == "llm.token_count.total"
    # Every concrete field of the catalogue compiles.
    for name, spec in FIELDS.items():
        if "<" not in name:
            compile_filter(f"{name} IS NOT NULL")
            assert spec.type


# --- fuzzing -------------------------------------------------------------------------------

_FIELDS = [n for n in FIELDS if "<" not in n] + [
    "attributes.llm.model_name",
    "attributes.llm.input_messages.0.message.role",
    "metadata.region",
    'metadata."my key"',
    "metadata['a']['b']",
    "llm.foo[3]",
    "eval.Correctness.label",
    "eval.Correctness.score",
    'evals["Q&A"].explanation',
    "annotations['Quality'].score",
    "eval.Correctness",
    "nope",
]
_VALUES = [
    "'x'",
    '"y z"',
    "''",
    "'1000'",
    "'2026-11-01T00:00:00Z'",
    "'2026-11-01'",
    "'LLM'",
    "0",
    "-1",
    "1.5",
    "1e30",
    "-1e-5",
    "99999999999999999999999",
    "9223372036854775807",
    "2147483648",
    "true",
    "FALSE",
    "null",
    "None",
    r"'\\'",
    "'%'",
    "'_'",
    "'é漢'",
]
_OPERATORS = ["=", "==", "!=", "<>", "<", "<=", ">", ">=", "contains", "not contains", "icontains"]
_TOKENS = [
    *_FIELDS,
    *_VALUES,
    *_OPERATORS,
    "in",
    "not in",
    "is",
    "is not",
    "and",
    "or",
    "not",
    "(",
    ")",
    ",",
    ".",
    "[",
    "]",
    "'",
    '"',
]


def runs_or_explains(text: str) -> bool:
    """True when the filter ran on the database, False when it was refused with FilterError."""
    try:
        q = compile_filter(text)
    except FilterError as error:
        assert error.position >= 1
        assert str(error)
        return False
    with transaction.atomic():
        list(Span.objects.filter(q)[:5])
    return True


@st.composite
def conditions(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(_FIELDS))
    form = draw(st.integers(0, 3))
    if form == 0:
        return f"{field} {draw(st.sampled_from(_OPERATORS))} {draw(st.sampled_from(_VALUES))}"
    if form == 1:
        values = draw(st.lists(st.sampled_from(_VALUES), min_size=1, max_size=4))
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} ({', '.join(values)})"
    if form == 2:
        return f"{field} is {draw(st.sampled_from(['', 'not ']))}null"
    return f"{draw(st.sampled_from(_VALUES))} {draw(st.sampled_from(['in', 'not in']))} {field}"


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner).map(" ".join),
        inner.map(lambda f: f"not ({f})"),
        inner.map(lambda f: f"({f})"),
    ),
    max_leaves=8,
)

_FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_arbitrary_text(spans: dict[str, Span], text: str) -> None:
    runs_or_explains(text)


@_FUZZ
@given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=14))
def test_fuzz_token_soup(spans: dict[str, Span], tokens: list[str]) -> None:
    runs_or_explains(" ".join(tokens))


@_FUZZ
@given(text=filters)
def test_fuzz_well_formed_filters(spans: dict[str, Span], text: str) -> None:
    runs_or_explains(text)


def test_well_formed_filters_mostly_run(spans: dict[str, Span]) -> None:
    """The grammar-built fuzzing is worth something only if most of its filters compile."""
    ran = [
        runs_or_explains(text)
        for text in (
            "name = 'x' and metadata.region in ('a', 1)",
            "eval.Correctness.score < 1e30 or not (total_tokens >= 9223372036854775807)",
            "'é漢' in attributes.llm.model_name or llm.foo[3] icontains '%'",
            "start_time > '2026-11-01' and end_time <= '2026-11-01T00:00:00+05:00'",
        )
    ]
    assert all(ran)


def test_parse_speed() -> None:
    text = "status_code = 'ERROR' AND eval.Correctness.label = 'correct' or latency_ms > 1000"
    started = datetime.now()
    for _ in range(200):
        compile_filter(text)
    assert datetime.now() - started < timedelta(seconds=2)


@pytest.mark.django_db
def test_a_trace_level_result_matches_the_root_span_only() -> None:
    from tests import factories

    agent, _retriever, llm = factories.trace()
    Annotation.objects.create(
        project=agent.project,
        target_kind="TRACE",
        trace=agent.trace,
        name="Coherence",
        annotator_kind="LLM",
        label="coherent",
    )
    found = set(
        Span.objects.filter(compile_filter("eval.Coherence.label = 'coherent'")).values_list(
            "span_id", flat=True
        )
    )
    assert found == {agent.span_id}
    assert llm.span_id in set(
        Span.objects.filter(compile_filter("eval.Coherence IS NULL")).values_list(
            "span_id", flat=True
        )
    )


def test_span_kind_takes_any_kind_a_span_was_sent_with() -> None:
    """PROMPT (LangChain's prompt templates), DECISION and kinds the conventions add later are
    stored as sent and filtered like the known ones; the field still lists the known kinds."""
    stored = factories.ingest(
        [
            factories.span_record(name="template", kind="PROMPT"),
            factories.span_record(name="future", kind="mcp_call"),
            factories.span_record(name="llm", kind="LLM"),
        ]
    )
    assert {s.name: s.span_kind for s in stored} == {
        "template": "PROMPT",
        "future": "MCP_CALL",
        "llm": "LLM",
    }

    def names(text: str) -> set[str]:
        return set(Span.objects.filter(compile_filter(text)).values_list("name", flat=True))

    assert names("span_kind == 'PROMPT'") == {"template"}
    assert names("span_kind = 'prompt'") == {"template"}
    assert names("span_kind = 'MCP_CALL'") == {"future"}
    assert names("span_kind IN ('PROMPT', 'LLM')") == {"template", "llm"}
    assert names("span_kind != 'LLM'") == {"template", "future"}
    assert names("span_kind = 'NOT_SENT'") == set()
    assert "PROMPT" in FIELDS["span_kind"].choices
    assert "any other kind" in FIELDS["span_kind"].description
