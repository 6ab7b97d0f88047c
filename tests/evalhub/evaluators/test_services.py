"""Providers, evaluators and versions, ``evaluator_run`` end to end, recorded results."""

import json
import logging
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import override_settings

from annotations.models import Annotation
from annotations.store.services import annotations_upsert
from evalhub.evaluators.models import EvaluatorVersion
from evalhub.evaluators.results import result_annotation
from evalhub.evaluators.running import evaluator_run
from evalhub.evaluators.selectors import evaluator_version_latest, variables_preview
from evalhub.evaluators.services import (
    evaluator_create,
    evaluator_create_from_template,
    evaluator_update,
)
from evalhub.providers.crypto import SecretUndecryptable, secret_decrypt
from evalhub.providers.models import Provider
from evalhub.providers.services import provider_create, provider_test_connection, provider_update
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY, Behavior
from tracing.models import ModelPrice
from tracing.store.pricing import price_cache_clear

pytestmark = pytest.mark.django_db

JUDGE = {
    "kind": "LLM",
    "template": "Question: {input}\nContext: {context}\nAnswer: {output}\nIs it correct?",
    "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    "variables": {"context": "documents"},
    "output_mode": "tool",
}


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("staff", password="x", is_staff=True)


@pytest.fixture
def member():
    return get_user_model().objects.create_user("member", password="x")


def evaluation_result_record(*, version, span, result):
    """Records ``result`` on its span, or its trace or session for those granularities, as the
    engine does (``result_annotation``)."""
    granularity = version.config.get("granularity", "span")
    if granularity == "trace":
        target_kind, target_id = "TRACE", span.trace.trace_id
    elif granularity == "session":
        target_kind, target_id = "SESSION", span.session.session_id
    else:
        target_kind, target_id = "SPAN", span.span_id
    item = result_annotation(
        result=result,
        evaluator_name=version.evaluator.name,
        annotator_kind="LLM" if version.evaluator.kind == "LLM" else "CODE",
        target_kind=target_kind,
        target_id=target_id,
    )
    return annotations_upsert(items=[item], source="TASK", project=span.project)[0]


def _judge(name="qa", **changes):
    return evaluator_create(name=name, config={**JUDGE, **changes})


# --- providers ---------------------------------------------------------------------------------


def test_the_api_key_is_encrypted_at_rest(provider):
    row = Provider.objects.get(pk=provider.pk)
    assert VALID_KEY not in row.api_key_encrypted
    assert secret_decrypt(row.api_key_encrypted) == VALID_KEY
    assert row.api_key_hint == "…cdef"
    assert row.is_default  # the first provider


def test_updating_without_a_key_keeps_it_and_a_new_default_replaces_the_old(provider):
    provider_update(provider=provider, default_model="judge-large", api_key="")
    provider.refresh_from_db()
    assert secret_decrypt(provider.api_key_encrypted) == VALID_KEY
    other = provider_create(
        name="other", kind="openai", default_model="gpt-4o-mini", api_key="sk-x", is_default=True
    )
    assert list(Provider.objects.filter(is_default=True)) == [other]


def test_provider_validation_names_the_field(db):
    with pytest.raises(ValueError, match="base_url: required"):
        provider_create(name="az", kind="azure", default_model="d", api_key="k")


def test_key_rotation_with_a_new_secret(provider):
    old_token = Provider.objects.get(pk=provider.pk).api_key_encrypted
    with (
        override_settings(EVALHUB_ENCRYPTION_KEYS=["new-secret-0123456789"]),
        pytest.raises(SecretUndecryptable),
    ):
        secret_decrypt(old_token)
    from django.conf import settings

    with override_settings(EVALHUB_ENCRYPTION_KEYS=["new-secret-0123456789", settings.SECRET_KEY]):
        call_command("rotate_provider_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    rotated = Provider.objects.get(pk=provider.pk).api_key_encrypted
    assert rotated != old_token
    with override_settings(EVALHUB_ENCRYPTION_KEYS=["new-secret-0123456789"]):
        assert secret_decrypt(rotated) == VALID_KEY


def test_test_connection_shows_the_answer_or_the_exact_error(provider, fake_openai):
    fake_openai.reply_with(content="pong")
    result = provider_test_connection(provider=provider)
    assert (result.ok, result.answer, result.model) == (True, "pong", "judge-small")
    provider_update(provider=provider, api_key="sk-not-the-right-one-123456")
    result = provider_test_connection(provider=provider)
    assert not result.ok
    assert result.error.startswith("authentication failed (401)")
    assert "sk-not-the-right-one-123456" not in result.error
    fake_openai.enqueue(Behavior.status(500))
    provider_update(provider=provider, api_key=VALID_KEY)
    result = provider_test_connection(provider=provider)
    assert result.error == "provider answered 500: scripted 500"


def test_the_key_is_never_logged(provider, fake_openai, caplog, fast_retry):
    caplog.set_level(logging.DEBUG)
    fake_openai.enqueue(Behavior.status(429, retry_after="0"))
    span = factories.trace()[2]
    evaluator = _judge()
    result = evaluator_run(
        version=evaluator_version_latest(evaluator=evaluator), span=span, retry=fast_retry
    )
    assert result.ok, result.error
    assert VALID_KEY not in caplog.text


# --- evaluators and versions -------------------------------------------------------------------


def test_editing_the_definition_adds_a_version(db):
    evaluator = _judge()
    assert evaluator.versions.count() == 1
    same = evaluator_update(evaluator=evaluator, config=dict(JUDGE), description="now described")
    assert same.number == 1
    changed = evaluator_update(evaluator=evaluator, config={**JUDGE, "temperature": 0.5})
    assert changed.number == 2
    assert [v.number for v in evaluator.versions.all()] == [2, 1]
    assert EvaluatorVersion.objects.get(evaluator=evaluator, number=1).config["temperature"] == 0


def test_invalid_definitions_are_refused_with_the_reason(db):
    with pytest.raises(ValueError, match=r"variable \{context\}: unknown source"):
        evaluator_create(name="bad", config={**JUDGE, "variables": {}})
    with pytest.raises(ValueError, match="name: letters"):
        evaluator_create(name="has space", config=JUDGE)


def test_only_staff_may_write_custom_code(member, staff):
    config = {"kind": "CODE", "check": "custom", "code": "def evaluate(**kw):\n    return 1"}
    with pytest.raises(PermissionDenied):
        evaluator_create(name="custom", config=config, user=member)
    evaluator = evaluator_create(name="custom", config=config, user=staff)
    with pytest.raises(PermissionDenied):
        evaluator_update(
            evaluator=evaluator, config={**config, "code": config["code"] + "\n"}, user=member
        )
    # A built-in check needs no privilege.
    evaluator_create(name="json", config={"kind": "CODE", "check": "valid_json"}, user=member)


def test_new_evaluator_from_template_copies_it(provider):
    evaluator = evaluator_create_from_template(key="hallucination", name="halluc")
    version = evaluator_version_latest(evaluator=evaluator)
    assert evaluator.template_key == "hallucination" and evaluator.kind == "LLM"
    assert [c["label"] for c in version.config["choices"]] == ["factual", "hallucinated"]
    assert "{documents}" in version.config["template"]


# --- evaluator_run: LLM judges ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tool", "json", "text"])
def test_each_output_mode_end_to_end(provider, fake_openai, mode):
    ModelPrice.objects.create(
        model_prefix="judge-small", prompt_per_million=Decimal(1), completion_per_million=Decimal(2)
    )
    price_cache_clear()
    fake_openai.answer("Incorrect", "The context says 30 days, the answer 60.")
    span = factories.trace(output_value="Refunds within 60 days.")[0]  # the agent root
    version = evaluator_version_latest(evaluator=_judge(output_mode=mode))

    result = evaluator_run(version=version, span=span)

    assert result.error is None
    assert (result.label, result.score) == ("incorrect", 0.0)
    assert result.explanation == "The context says 30 days, the answer 60."
    assert result.values["context"] == "[1] Refunds within 30 days."  # from the retriever span
    assert "Answer: Refunds within 60 days." in result.rendered_prompt
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.total_tokens == result.prompt_tokens + result.completion_tokens
    assert result.cost == pytest.approx(
        (result.prompt_tokens * 1 + result.completion_tokens * 2) / 1e6
    )
    assert result.latency_ms > 0
    assert result.version == 1 and result.model == "judge-small"
    body = fake_openai.bodies[0]
    assert ("tools" in body) == (mode == "tool")
    assert ("response_format" in body) == (mode == "json")
    assert json.loads(result.raw_response)["usage"]["total_tokens"] == result.total_tokens


def test_text_naming_two_choices_is_an_unparseable_error_not_a_guess(provider, fake_openai):
    fake_openai.reply_with(content="Partly correct, partly incorrect.")
    span = factories.trace()[0]
    version = evaluator_version_latest(evaluator=_judge(output_mode="text", explanations=False))
    result = evaluator_run(version=version, span=span)
    assert result.label is None and result.score is None
    assert result.error.startswith("unparseable answer: the answer names several choices")
    assert result.raw_response is not None  # kept, to see what the model said


def test_empty_answer_is_an_error(provider, fake_openai):
    fake_openai.enqueue(Behavior.empty())
    version = evaluator_version_latest(evaluator=_judge(output_mode="json"))
    result = evaluator_run(version=version, span=factories.trace()[0])
    assert result.error == "unparseable answer: the model's answer is empty"


def test_missing_variable_is_a_clear_error_naming_it(provider, fake_openai):
    span = factories.span_record(input_value="hi", output_value="hello")
    stored = factories.ingest([span])[0]
    version = evaluator_version_latest(evaluator=_judge())
    result = evaluator_run(version=version, span=stored)
    assert result.error == (
        f"missing variable {{context}}: documents is missing on span {stored.span_id} (span)"
    )
    assert fake_openai.requests == []  # nothing was sent


def test_pasted_values_need_no_span(provider, fake_openai):
    fake_openai.answer("correct", "fine")
    version = evaluator_version_latest(evaluator=_judge())
    result = evaluator_run(
        version=version, values={"input": "2+2?", "output": "4", "context": "arithmetic"}
    )
    assert result.label == "correct"
    assert "Context: arithmetic" in result.rendered_prompt


def test_no_provider_is_an_error(db):
    version = evaluator_version_latest(evaluator=_judge())
    result = evaluator_run(version=version, values={"input": "a", "output": "b", "context": "c"})
    assert result.error == "no default LLM provider: add one under Settings → AI providers"


def test_variable_preview_on_a_real_span(provider):
    spans = factories.trace(metadata={"reference": "30 days", "customer": {"tier": "gold"}})
    llm_span = spans[2]
    config = {
        **JUDGE,
        "template": "{messages} {tier} {reference} {context} {nothing}",
        "variables": {
            "messages": "attributes.llm.input_messages",
            "tier": "metadata.customer.tier",
            "context": "documents",
            "nothing": "metadata.absent",
        },
    }
    previews = {p.name: p for p in variables_preview(config=config, span=llm_span)}
    assert previews["messages"].value == "user: question"
    assert previews["tier"].value == "gold"
    assert previews["reference"].value == "30 days"
    assert previews["context"].value == "[1] Refunds within 30 days."
    assert previews["nothing"].value is None
    assert previews["nothing"].error.startswith("missing variable {nothing}: metadata.absent")


def test_trace_and_session_granularity_sources(provider, fake_openai):
    first = factories.trace(session_id="s-1", input_value="Hi", output_value="Hello!")
    factories.trace(
        session_id="s-1",
        input_value="Still broken!!",
        output_value="Sorry.",
        start=factories.BASE_TIME.replace(hour=13),
    )
    fake_openai.answer("frustrated", "repeats the complaint")
    frustration = evaluator_create_from_template(key="user_frustration")
    version = evaluator_version_latest(evaluator=frustration)
    result = evaluator_run(version=version, span=first[0])
    assert result.values["conversation"] == (
        "User: Hi\nAssistant: Hello!\nUser: Still broken!!\nAssistant: Sorry."
    )
    annotation = evaluation_result_record(version=version, span=first[0], result=result)
    assert annotation.target_kind == "SESSION" and annotation.session.session_id == "s-1"

    fake_openai.answer("efficient", "direct")
    trajectory = evaluator_version_latest(
        evaluator=evaluator_create_from_template(key="agent_trajectory")
    )
    result = evaluator_run(version=trajectory, span=first[0])
    lines = result.values["trajectory"].splitlines()
    assert lines[0] == "1. [AGENT] agent"
    assert lines[3] == "  2. [RETRIEVER] retrieve"
    assert evaluation_result_record(version=trajectory, span=first[0], result=result).trace_id


# --- evaluator_run: code ----------------------------------------------------------------------


def test_builtin_code_evaluator_on_a_span_and_recorded(db):
    spans = factories.trace(metadata={"reference": "Refunds are accepted within 30 days."})
    evaluator = evaluator_create(
        name="matches-reference", config={"kind": "CODE", "check": "exact_match"}
    )
    version = evaluator_version_latest(evaluator=evaluator)
    result = evaluator_run(version=version, span=spans[0])
    assert (result.label, result.score, result.error) == ("match", 1.0, None)
    annotation = evaluation_result_record(version=version, span=spans[0], result=result)
    assert annotation.name == "matches-reference"
    assert annotation.annotator_kind == "CODE" and annotation.source == "TASK"
    assert annotation.metadata["version"] == 1
    assert annotation.metadata["version_id"] == version.pk


def test_custom_code_failure_is_recorded_as_an_error(staff, celery_eager):
    spans = factories.trace()
    evaluator = evaluator_create(
        name="custom",
        config={
            "kind": "CODE",
            "check": "custom",
            "code": "def evaluate(input, output, metadata, reference, span):\n    return 1 / 0\n",
        },
        user=staff,
    )
    version = evaluator_version_latest(evaluator=evaluator)
    result = evaluator_run(version=version, span=spans[0])
    assert result.error == "ZeroDivisionError: division by zero"
    annotation = evaluation_result_record(version=version, span=spans[0], result=result)
    assert annotation.label is None and annotation.score is None
    assert annotation.explanation == "error: ZeroDivisionError: division by zero"
    assert "line 2, in evaluate" in annotation.metadata["traceback"]
    assert Annotation.objects.count() == 1


def test_custom_code_sees_the_span(staff, celery_eager):
    span = factories.trace(llm_latency_ms=900)[2]
    code = (
        "def evaluate(input, output, metadata, reference, span):\n"
        "    return {'label': span['kind'], 'score': span['latency_ms'],"
        " 'explanation': span['attributes']['llm']['model_name']}\n"
    )
    evaluator = evaluator_create(
        name="sees-span", config={"kind": "CODE", "check": "custom", "code": code}, user=staff
    )
    result = evaluator_run(version=evaluator_version_latest(evaluator=evaluator), span=span)
    assert (result.label, result.score, result.explanation) == ("LLM", 900.0, "gpt-4o-mini")


def test_judge_results_record_the_version_that_produced_them(provider, fake_openai):
    span = factories.trace()[0]
    evaluator = _judge()
    first = evaluator_version_latest(evaluator=evaluator)
    evaluation_result_record(
        version=first, span=span, result=evaluator_run(version=first, span=span)
    )
    second = evaluator_update(evaluator=evaluator, config={**JUDGE, "max_tokens": 100})
    fake_openai.answer("incorrect")
    annotation = evaluation_result_record(
        version=second, span=span, result=evaluator_run(version=second, span=span)
    )
    assert annotation.metadata["version"] == 2 and annotation.label == "incorrect"
    assert annotation.annotator_kind == "LLM"
    assert annotation.metadata["total_tokens"] > 0
    assert Annotation.objects.filter(name="qa").count() == 1  # upserted


def test_error_reports_hide_the_decrypted_key(provider, monkeypatch):
    import sys

    import openai
    from django.views.debug import ExceptionReporter
    from django.views.decorators.debug import sensitive_variables

    from evalhub.providers.selectors import provider_config

    @sensitive_variables()  # the SDK's own frames are not in reports: chat_complete raises
    def broken_client(**kwargs):  # LlmError ``from None`` for every SDK error
        raise RuntimeError("client construction failed")

    monkeypatch.setattr(openai, "OpenAI", broken_client)
    try:
        provider_test_connection(provider=provider)
    except RuntimeError:
        report = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
    assert "client construction failed" in report
    assert "common" in report  # the frame variables are in the report…
    assert VALID_KEY not in report  # …but not the key
    assert VALID_KEY not in repr(provider_config(provider))
