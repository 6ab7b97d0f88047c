"""Built-in code evaluators and the custom-code sandbox."""

import os

import pytest

from evalhub.evaluators.checks import CheckError, CodeInput, check_run, params_validate
from evalhub.evaluators.definition import EvaluatorConfigError, config_parse
from evalhub.evaluators.sandbox.run import sandbox_run


def run(check, *, output=None, reference=None, input=None, span=None, **params):
    data = CodeInput(input=input, output=output, reference=reference, span=span or {})
    outcome = check_run(check, data, params_validate(check, params))
    return outcome.label, outcome.score, outcome.explanation


def test_exact_match():
    assert run("exact_match", output=" Paris\n", reference="Paris")[:2] == ("match", 1.0)
    assert run("exact_match", output="paris", reference="Paris")[:2] == ("no_match", 0.0)
    assert run("exact_match", output="paris", reference="Paris", case_sensitive=False)[0] == "match"
    with pytest.raises(CheckError, match="no reference"):
        run("exact_match", output="Paris")


def test_regex():
    label, score, explanation = run("regex", output="Order #A-1234 shipped", pattern=r"#[A-Z]-\d+")
    assert (label, score) == ("match", 1.0) and "#A-1234" in explanation
    assert run("regex", output="abc", pattern="ABC")[0] == "no_match"
    assert run("regex", output="abc", pattern="ABC", ignore_case=True)[0] == "match"
    assert run("regex", output="abc1", pattern=r"[a-z]+", full_match=True)[0] == "no_match"
    assert run("regex", input="hello", pattern="^hel", target="input")[0] == "match"
    with pytest.raises(ValueError, match="not a regular expression"):
        params_validate("regex", {"pattern": "(unclosed"})


def test_contains_keywords_any_and_all():
    text = "Refunds are accepted within 30 days of purchase."
    assert run("contains_keywords", output=text, keywords=["refund", "exchange"])[:2] == (
        "contains",
        1.0,
    )
    label, score, explanation = run(
        "contains_keywords", output=text, keywords=["refund", "exchange"], mode="all"
    )
    assert (label, score) == ("does_not_contain", 0.0)
    assert explanation == "found: refund; missing: exchange"
    assert (
        run("contains_keywords", output=text, keywords=["refunds"], case_sensitive=True)[0]
        == "does_not_contain"
    )


def test_valid_json():
    assert run("valid_json", output='{"a": [1, 2]}')[:2] == ("valid", 1.0)
    label, score, explanation = run("valid_json", output="{'a': 1}")
    assert (label, score) == ("invalid", 0.0) and explanation.startswith("not JSON")


def test_json_schema():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
    }
    assert run("json_schema", output='{"name": "Ada", "age": 36}', schema=schema)[0] == "valid"
    label, _, explanation = run("json_schema", output='{"name": "Ada", "age": -1}', schema=schema)
    assert label == "invalid" and explanation.startswith("age: -1 is less than the minimum")
    assert run("json_schema", output="nope", schema=schema)[0] == "invalid"
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        params_validate("json_schema", {"schema": {"type": "bogus"}})


def test_length_bounds():
    assert run("length_bounds", output="one two three", min=2, max=5, unit="words")[:2] == (
        "within_bounds",
        1.0,
    )
    assert run("length_bounds", output="x" * 11, max=10)[0] == "too_long"
    assert run("length_bounds", output="hi", min=3)[0] == "too_short"
    with pytest.raises(ValueError, match="min, max or both"):
        params_validate("length_bounds", {})


def test_latency_budget():
    assert run("latency_budget", span={"latency_ms": 420.0}, max_ms=500)[:2] == (
        "within_budget",
        1.0,
    )
    label, score, explanation = run("latency_budget", span={"latency_ms": 1200.0}, max_ms=500)
    assert (label, score, explanation) == ("over_budget", 0.0, "1200 ms, budget 500 ms")
    with pytest.raises(CheckError, match="no latency"):
        run("latency_budget", max_ms=500)


def test_status_is_error():
    assert run("status_is_error", span={"status_code": "ERROR", "status_message": "boom"}) == (
        "error",
        1.0,
        "boom",
    )
    assert run("status_is_error", span={"status_code": "OK"})[:2] == ("ok", 0.0)


def test_pii_names_kinds_but_never_values():
    text = (
        "Mail ada@example.com or call +1 415-555-0199; card 4111 1111 1111 1111; "
        "SSN 123-45-6789; from 10.0.0.12"
    )
    label, score, explanation = run("pii", output=text)
    assert (label, score) == ("pii_found", 1.0)
    for kind in ("email (1)", "phone (1)", "credit_card (1)", "ssn (1)", "ip_address (1)"):
        assert kind in explanation
    assert "ada@example.com" not in explanation and "4111" not in explanation
    # A 16-digit number failing the Luhn check is not a card.
    assert run("pii", output="order 1234 5678 9012 3456", kinds=["credit_card"])[0] == "no_pii"
    assert run("pii", output="nothing personal here")[:2] == ("no_pii", 0.0)


def test_string_similarity():
    label, score, _ = run("string_similarity", output="The cat sat", reference="the cat sat")
    assert (label, score) == ("similar", 1.0)
    label, score, _ = run(
        "string_similarity", output="kitten", reference="sitting", method="levenshtein"
    )
    assert label == "dissimilar" and score == pytest.approx(1 - 3 / 7, abs=1e-4)
    _, score, _ = run(
        "string_similarity", output="a b c d", reference="a b x y", method="jaccard", threshold=0.3
    )
    assert score == pytest.approx(2 / 6, abs=1e-4)


def test_unknown_params_are_rejected_with_their_name():
    with pytest.raises(EvaluatorConfigError, match="params: unknown colour for valid_json"):
        config_parse({"kind": "CODE", "check": "valid_json", "params": {"colour": "red"}})


# --- custom code in the sandbox ---------------------------------------------------------------

ARGS = {
    "input": "What is 2+2?",
    "output": "4",
    "metadata": {"expected": "4"},
    "reference": "4",
    "span": {"latency_ms": 12.0},
}


def test_custom_code_returns_label_score_explanation():
    code = """
def evaluate(input, output, metadata, reference, span):
    same = output.strip() == reference.strip()
    print("debug line")
    return {"label": "pass" if same else "fail", "score": float(same), "explanation": input}
"""
    result = sandbox_run(code=code, arguments=ARGS)
    assert (result.label, result.score, result.explanation) == ("pass", 1.0, "What is 2+2?")
    assert result.error is None
    assert result.stdout == "debug line\n"


def test_custom_code_may_return_a_bare_bool_or_number():
    assert sandbox_run(code="def evaluate(**kw):\n    return 0.25", arguments=ARGS).score == 0.25
    result = sandbox_run(code="def evaluate(**kw):\n    return True", arguments=ARGS)
    assert (result.label, result.score) == ("true", 1.0)


def test_an_exception_is_a_recorded_error_with_the_traceback():
    code = """
def helper(x):
    return x["missing"]

def evaluate(input, output, metadata, reference, span):
    return helper(metadata)
"""
    result = sandbox_run(code=code, arguments=ARGS)
    assert result.error == "KeyError: 'missing'"
    assert 'File "<evaluator>", line 3, in helper' in result.traceback
    assert "sandbox/child.py" not in result.traceback


def test_an_endless_loop_times_out():
    code = "def evaluate(**kw):\n    while True:\n        pass\n"
    result = sandbox_run(code=code, arguments=ARGS, timeout_seconds=1.0)
    assert result.error is not None
    assert "timed out after 1s" in result.error or "CPU time limit" in result.error
    assert result.duration_ms < 5000


def test_a_sleeping_evaluator_hits_the_wall_clock_timeout():
    code = "import time\ndef evaluate(**kw):\n    time.sleep(30)\n"
    result = sandbox_run(code=code, arguments=ARGS, timeout_seconds=0.5)
    assert result.error == "timed out after 0.5s (wall clock)"


def test_unbounded_allocation_hits_the_memory_limit():
    code = "def evaluate(**kw):\n    blocks = []\n    while True:\n        blocks.append(bytearray(10**7))\n"
    result = sandbox_run(code=code, arguments=ARGS, memory_mb=128, timeout_seconds=10)
    assert result.error is not None
    assert "MemoryError" in result.error or "memory" in result.error


def test_the_environment_is_empty(monkeypatch):
    monkeypatch.setenv("EVALHUB_TEST_SECRET", "hunter2")
    code = """
import os
def evaluate(**kw):
    return {"label": repr(dict(os.environ)), "explanation": os.environ["EVALHUB_TEST_SECRET"]}
"""
    result = sandbox_run(code=code, arguments=ARGS)
    assert result.error == "KeyError: 'EVALHUB_TEST_SECRET'"
    listing = sandbox_run(
        code="import os\ndef evaluate(**kw):\n    return repr(dict(os.environ))", arguments=ARGS
    )
    assert listing.label == "{}"


def test_network_processes_and_writes_are_refused_by_the_kernel():
    """The whole corpus is tests/security/test_sandbox_escapes.py."""
    network = """
import socket
def evaluate(**kw):
    socket.create_connection(("127.0.0.1", 6379), timeout=1)
    return "connected"
"""
    eperm = "PermissionError: [Errno 1] Operation not permitted"
    assert sandbox_run(code=network, arguments=ARGS).error == eperm
    spawn = "import subprocess\ndef evaluate(**kw):\n    return subprocess.run(['id']).returncode"
    assert sandbox_run(code=spawn, arguments=ARGS).error == eperm
    write = "def evaluate(**kw):\n    open('/tmp/evalhub-sandbox-test', 'w')\n    return 1"
    assert sandbox_run(code=write, arguments=ARGS).error.startswith(eperm)
    assert not os.path.exists("/tmp/evalhub-sandbox-test")


def test_a_bad_return_value_is_an_error():
    result = sandbox_run(code="def evaluate(**kw):\n    return [1]", arguments=ARGS)
    assert result.error.startswith("TypeError: evaluate() must return")
    result = sandbox_run(code="x = 1", arguments=ARGS)
    assert result.error.startswith("NameError: the code defines no evaluate")
