"""The evaluator form: definitions round-trip through its fields, rows are read as rows, the
edited JSON wins, and the services' errors land next to the fields they name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from evalhub.evaluators.definition import config_parse
from evalhub.evaluators.forms import EvaluatorForm, param_field_name, variable_rows
from evalhub.evaluators.library import TEMPLATES
from tests.evalhub.evaluators.factories import browser_data

pytestmark = pytest.mark.django_db


class Staff(AnonymousUser):
    is_staff = True


def _stored(config: dict[str, Any]) -> dict[str, Any]:
    return config_parse(config).model_dump(mode="json")


def _posted(config: dict[str, Any], **changes: Any) -> EvaluatorForm:
    shown = EvaluatorForm(config=config, user=Staff(), initial={"name": "e"})
    form = EvaluatorForm(browser_data(shown, **changes), config=config, user=Staff())
    return form


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_library_judge_round_trips_through_the_fields(template):
    stored = _stored(template.config())
    form = _posted(stored)
    assert form.is_valid(), form.errors
    assert not form.uses_json
    assert _stored(form.cleaned_data["config"]) == stored


CODE_CONFIGS = [
    {"check": "exact_match", "params": {"case_sensitive": False, "strip": True}},
    {"check": "regex", "params": {"pattern": r"^\d+$", "ignore_case": True, "target": "input"}},
    {"check": "contains_keywords", "params": {"keywords": ["refund", "30 days"], "mode": "all"}},
    {"check": "valid_json", "params": {}},
    {"check": "json_schema", "params": {"schema": {"type": "object", "required": ["a"]}}},
    {"check": "length_bounds", "params": {"min": 3, "max": None, "unit": "words"}},
    {"check": "latency_budget", "params": {"max_ms": 1500}},
    {"check": "status_is_error", "params": {}},
    {"check": "pii", "params": {"kinds": ["email", "phone"]}},
    {"check": "string_similarity", "params": {"method": "jaccard", "threshold": 0.65}},
    {
        "check": "custom",
        "code": "def evaluate(input, output, metadata, reference, span):\n    return 1\n",
        "timeout_seconds": 2.5,
        "memory_mb": 128,
    },
]


@pytest.mark.parametrize("config", CODE_CONFIGS, ids=lambda c: c["check"])
def test_every_code_check_round_trips_through_the_fields(config):
    stored = _stored({"kind": "CODE", "variables": {"reference": "metadata.gold"}, **config})
    form = _posted(stored)
    assert form.is_valid(), form.errors
    assert _stored(form.cleaned_data["config"]) == stored


def test_a_check_shows_its_own_params_and_defaults_for_the_others():
    form = EvaluatorForm(
        config=_stored({"kind": "CODE", "check": "regex", "params": {"pattern": "a+"}}),
        user=None,
    )
    assert form[param_field_name("regex", "pattern")].value() == "a+"
    assert form[param_field_name("exact_match", "case_sensitive")].value() is True
    assert form[param_field_name("string_similarity", "threshold")].value() == 0.8
    assert "custom" not in dict(form.fields["check"].choices)  # staff only


def test_choice_rows_skip_empty_rows_and_name_the_bad_one():
    stored = _stored(TEMPLATES[0].config())
    form = _posted(
        stored, **{"choices-label": ["yes", "", "no", ""], "choices-score": ["1", "", "", ""]}
    )
    assert form.is_valid()
    assert form.cleaned_data["config"]["choices"] == [
        {"label": "yes", "score": 1.0},
        {"label": "no", "score": None},
    ]
    form = _posted(stored, **{"choices-label": ["yes", ""], "choices-score": ["1", "0"]})
    assert not form.is_valid()
    assert form.errors["choices"] == ["row 2: a choice needs a label"]
    form = _posted(stored, **{"choices-label": ["yes", "no"], "choices-score": ["1", "high"]})
    assert form.errors["choices"] == ["row 2: the score must be a number"]


def test_variable_rows_follow_the_template_and_keep_typed_sources():
    rows = variable_rows("Q: {question}\nA: {output} {question} {{literal}}", {"question": "x"})
    assert [(r.name, r.source, r.default) for r in rows] == [
        ("question", "x", ""),
        ("output", "", "output"),
    ]


def test_only_the_template_variables_with_a_source_are_mapped():
    stored = _stored(TEMPLATES[0].config())
    form = _posted(
        stored,
        template="{question} {output}",
        **{"variables-name": ["question", "output"], "variables-source": ["input", ""]},
    )
    assert form.is_valid()
    assert form.cleaned_data["config"]["variables"] == {"question": "input"}


def test_changed_json_wins_over_the_fields_and_unchanged_json_does_not():
    stored = _stored(TEMPLATES[0].config())
    edited = dict(stored, model="gpt-4o")
    form = _posted(stored, definition=json.dumps(edited), model="ignored")
    assert form.is_valid() and form.uses_json
    assert form.cleaned_data["config"]["model"] == "gpt-4o"
    form = _posted(stored, model="from-the-field")
    assert form.is_valid() and not form.uses_json
    assert form.cleaned_data["config"]["model"] == "from-the-field"
    form = _posted(stored, definition="{not json")
    assert not form.is_valid() and "not valid JSON" in form.errors["definition"][0]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("choices: List should have at least 2 items", "choices"),
        ("variable {q}: unknown source 'q' (use one of input)", "variables"),
        ("variables: variable {q}: unknown source 'z'", "variables"),
        ("template: has no {variables}; it would judge nothing", "template"),
        ("temperature: Input should be less than or equal to 2", "temperature"),
        ("provider_id: no provider #9", "provider"),
        ("kind: an evaluator's kind cannot change", "__all__"),
    ],
)
def test_judge_errors_land_on_their_field(message, field):
    form = _posted(_stored(TEMPLATES[0].config()))
    assert form.is_valid()
    form.add_config_error(ValueError(message))
    assert form.errors[field] == [message]


def test_param_errors_land_on_the_param_and_json_errors_on_the_json():
    stored = _stored({"kind": "CODE", "check": "regex", "params": {"pattern": "a"}})
    form = _posted(stored)
    assert form.is_valid()
    form.add_config_error(ValueError("params.pattern: not a regular expression: x"))
    form.add_config_error(ValueError("params: min is greater than max"))
    assert form.errors[param_field_name("regex", "pattern")] == [
        "params.pattern: not a regular expression: x"
    ]
    assert form.errors["check"] == ["params: min is greater than max"]
    form = _posted(stored, definition=json.dumps(dict(stored, check="nope")))
    assert form.is_valid() and form.uses_json
    form.add_config_error(ValueError("check: Input should be 'exact_match'"))
    assert form.errors["definition"] == ["check: Input should be 'exact_match'"]


def test_several_errors_are_split_to_their_fields():
    form = _posted(_stored(TEMPLATES[0].config()))
    assert form.is_valid()
    form.add_config_error(
        ValueError("choices: List should have at least 2 items; template: has no {x}; really")
    )
    assert form.errors["choices"] == ["choices: List should have at least 2 items"]
    assert form.errors["template"] == ["template: has no {x}; really"]
