"""The evaluator form: an LLM judge or a code evaluator as fields, with "Edit as JSON" as a
fallback. The form only turns what the browser sent into a definition dict; the rules (what a
valid definition is) are ``evalhub.evaluators.definition``'s, applied by the services, whose errors come
back here as field errors (``add_config_error``).

Rows (a judge's choices, its variable mapping) are posted as parallel lists: ``choices-label``
and ``choices-score`` once per row, ``variables-name`` and ``variables-source`` likewise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, Final

from django import forms
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from evalhub.core.forms import form_field
from evalhub.evaluators.checks import PARAMS, Param
from evalhub.evaluators.definition import BUILTIN_CHECKS
from evalhub.evaluators.judge import template_variables
from evalhub.evaluators.models import EvaluatorKind
from evalhub.evaluators.variables import SIMPLE_SOURCES
from evalhub.providers.selectors import provider_list

GRANULARITIES = [("span", "Span"), ("trace", "Trace"), ("session", "Session")]
OUTPUT_MODES = [
    ("tool", "Tool call (most reliable)"),
    ("json", "JSON object"),
    ("text", "Plain text (label found in the answer)"),
]
CODE_VARIABLES = ("input", "output", "reference")
# Suggestions for a variable's source (the datalist); any metadata.<key> or attributes.<path> works.
SOURCE_SUGGESTIONS: tuple[tuple[str, str], ...] = (
    *((source, source) for source in SIMPLE_SOURCES),
    ("metadata.", "metadata.<key>"),
    ("attributes.", "attributes.<path>"),
    ("attributes.llm.input_messages", "attributes.llm.input_messages"),
    ("attributes.llm.output_messages", "attributes.llm.output_messages"),
    ("attributes.llm.tools", "attributes.llm.tools"),
)


def _text(value: str | None) -> str:
    """Textarea text as stored: browsers post CRLF line ends."""
    return (value or "").replace("\r\n", "\n")


# --- rows -------------------------------------------------------------------------------------


class RowsWidget(forms.Widget):
    """Reads rows posted as parallel lists ``<name>-<column>``; rendered by the template."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        super().__init__()
        self.columns = columns

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[dict[str, str]]:
        if not isinstance(data, MultiValueDict):
            return []
        lists = [data.getlist(f"{name}-{column}") for column in self.columns]
        return [
            dict(zip(self.columns, (str(v) for v in values), strict=True))
            for values in zip_longest(*lists, fillvalue="")
        ]

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False


class RowsField(forms.Field):
    def __init__(self, *, columns: tuple[str, ...], **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(widget=RowsWidget(columns), **kwargs)

    def to_python(self, value: Any) -> list[dict[str, str]]:
        return list(value or [])


@dataclass(frozen=True, slots=True)
class ChoiceRow:
    label: str
    score: str


@dataclass(frozen=True, slots=True)
class VariableRow:
    name: str
    source: str
    default: str  # what an empty source means: the source of the same name, or "" (none)


def variable_rows(template: str, sources: dict[str, str]) -> list[VariableRow]:
    """One row per ``{variable}`` of ``template``, with the source typed so far (empty: by
    name, when the variable is named like a source)."""
    return [
        VariableRow(name, sources.get(name, ""), name if name in SIMPLE_SOURCES else "")
        for name in template_variables(template)
    ]


def posted_sources(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["name"]: r["source"].strip() for r in rows if r.get("name")}


# --- built-in check parameters ----------------------------------------------------------------


# The parameters are declared once, with the checks (``evalhub.evaluators.checks.PARAMS``);
# the fields below are built from that declaration.
# Defaults shown for a check that is not the current one (the checks' own).
PARAM_DEFAULTS: Final = {
    check: {p.name: p.default for p in params if p.default is not ... and p.default is not None}
    for check, params in PARAMS.items()
}


def param_field_name(check: str, param: str) -> str:
    return f"param-{check}-{param}"


def _param_field(spec: Param) -> forms.Field:
    common: dict[str, Any] = {"label": spec.label, "required": False, "help_text": spec.help_text}
    mono = {"class": "mono", "spellcheck": "false"}
    if spec.kind == "bool":
        return forms.BooleanField(**common)
    if spec.kind == "int":
        return forms.IntegerField(**common)
    if spec.kind == "number":
        return forms.FloatField(**common, widget=forms.NumberInput(attrs={"step": "any"}))
    if spec.kind == "choice":
        return forms.ChoiceField(**common, choices=[(o, o) for o in spec.options])
    if spec.kind == "multi":
        return forms.MultipleChoiceField(
            **common,
            choices=[(o, o.replace("_", " ")) for o in spec.options],
            widget=forms.CheckboxSelectMultiple,
        )
    if spec.kind in ("lines", "json"):
        return forms.CharField(**common, strip=False, widget=forms.Textarea({"rows": 4, **mono}))
    return forms.CharField(**common, strip=False, widget=forms.TextInput(mono))


def _param_initial(spec: Param, value: Any) -> Any:
    if spec.kind == "lines":
        return "\n".join(str(v) for v in value or [])
    if spec.kind == "json":
        return json.dumps(value, indent=2) if value is not None else ""
    return value


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


# --- the form ---------------------------------------------------------------------------------

_LLM_FIELDS = (
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "system_prompt",
    "template",
    "output_mode",
    "explanations",
    "choices",
)
_CODE_FIELDS = ("check", "code", "timeout_seconds", "memory_mb")
_ERROR_PREFIX = re.compile(r"^(?P<path>[A-Za-z_][\w.]*): ")
# Several errors are joined by "; " (``config._readable``); a message may contain "; " too.
_ERROR_SPLIT = re.compile(r"; (?=[A-Za-z_][\w.]*: |variable \{)")


class EvaluatorForm(forms.Form):
    """An LLM judge's or a code evaluator's fields (``kind`` decides which are there), and
    the definition as JSON: when the JSON was changed from what the page showed, it wins."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    # LLM judge
    provider = forms.ModelChoiceField(
        queryset=provider_list(), required=False, empty_label="Default provider"
    )
    model = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "the provider's default model"}),
    )
    temperature = forms.FloatField(
        required=False, widget=forms.NumberInput(attrs={"step": "0.1", "min": 0, "max": 2})
    )
    max_tokens = forms.IntegerField(
        required=False, label="Max tokens", widget=forms.NumberInput(attrs={"min": 1})
    )
    system_prompt = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    template = forms.CharField(
        label="Prompt template",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono", "spellcheck": "false"}),
        help_text="Write {variable} where a value from the span goes; {{ and }} for braces.",
    )
    output_mode = forms.ChoiceField(required=False, choices=OUTPUT_MODES, label="Output")
    explanations = forms.BooleanField(required=False, label="Ask for an explanation")
    choices = RowsField(columns=("label", "score"))
    # shared
    granularity = forms.ChoiceField(required=False, choices=GRANULARITIES, label="Evaluate each")
    variables = RowsField(columns=("name", "source"))
    # code evaluator
    check = forms.ChoiceField(required=False, label="Check")
    code = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono", "spellcheck": "false"}),
        help_text="Define evaluate(input, output, metadata, reference, span) returning a dict "
        "with label, score and explanation.",
    )
    timeout_seconds = forms.FloatField(
        required=False, label="Timeout (s)", widget=forms.NumberInput(attrs={"step": "any"})
    )
    memory_mb = forms.IntegerField(required=False, label="Memory (MB)")
    # the fallback
    definition = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 20, "class": "mono", "spellcheck": "false"}),
    )
    definition_shown = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def __init__(
        self, data: Any = None, *, config: dict[str, Any], user: Any = None, **kwargs: Any
    ) -> None:
        self.kind = EvaluatorKind.CODE if config.get("kind") == "CODE" else EvaluatorKind.LLM
        shown = json.dumps(config, indent=2)
        initial = {"definition": shown, "definition_shown": shown, **kwargs.pop("initial", {})}
        super().__init__(data, initial=initial | self._initial_from(config), **kwargs)
        self.uses_json = False
        for name in _CODE_FIELDS if self.kind == EvaluatorKind.LLM else _LLM_FIELDS:
            del self.fields[name]
        if self.kind == EvaluatorKind.LLM:
            self.fields["template"].widget.attrs.update(
                {
                    "hx-post": reverse("evaluators:form-variables"),
                    "hx-trigger": "input changed delay:400ms",
                    "hx-target": "#variable-rows",
                    "hx-swap": "outerHTML",
                    "hx-sync": "this:replace",
                }
            )
        else:
            checks = list(BUILTIN_CHECKS)
            if getattr(user, "is_staff", False) or config.get("check") == "custom":
                checks.append("custom")
            form_field(self, "check", forms.ChoiceField).choices = [
                (c, c.replace("_", " ")) for c in checks
            ]
            current = config.get("check")
            for check, specs in PARAMS.items():
                values = PARAM_DEFAULTS.get(check, {})
                if check == current:
                    values = values | config.get("params", {})
                for spec in specs:
                    name = param_field_name(check, spec.name)
                    self.fields[name] = _param_field(spec)
                    self.initial[name] = _param_initial(spec, values.get(spec.name))

    @staticmethod
    def _initial_from(config: dict[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {
            key: config[key]
            for key in (
                "model",
                "temperature",
                "max_tokens",
                "system_prompt",
                "template",
                "output_mode",
                "explanations",
                "granularity",
                "check",
                "code",
                "timeout_seconds",
                "memory_mb",
            )
            if key in config
        }
        initial["provider"] = config.get("provider_id")
        initial["choices"] = [
            {
                "label": c.get("label", ""),
                "score": "" if c.get("score") is None else str(c["score"]),
            }
            for c in config.get("choices", [])
        ]
        initial["variables"] = [
            {"name": name, "source": source} for name, source in config.get("variables", {}).items()
        ]
        return initial

    # --- what the template renders ---

    def _value(self, name: str) -> Any:
        return self[name].value() if name in self.fields else None

    def choice_rows(self) -> list[ChoiceRow]:
        rows = [ChoiceRow(r.get("label", ""), r.get("score", "")) for r in self._value("choices")]
        return rows or [ChoiceRow("", ""), ChoiceRow("", "")]

    def variable_rows(self) -> list[VariableRow]:
        sources = posted_sources(self._value("variables") or [])
        if self.kind == EvaluatorKind.CODE:
            return [VariableRow(n, sources.get(n, ""), n) for n in CODE_VARIABLES]
        return variable_rows(_text(self._value("template")), sources)

    def model_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("provider", "model", "temperature", "max_tokens")]

    def param_sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (check, [self[param_field_name(check, spec.name)] for spec in specs])
            for check, specs in PARAMS.items()
        ]

    def current_check(self) -> str:
        return str(self._value("check") or "")

    def json_edited(self) -> bool:
        """Whether the JSON posted differs from the JSON the page showed."""
        posted, shown = self.data.get("definition"), self.data.get("definition_shown")
        return _text(posted).strip() != _text(shown).strip()

    # --- cleaning ---

    def clean_choices(self) -> list[dict[str, Any]]:
        choices = []
        for number, row in enumerate(self.cleaned_data["choices"], 1):
            label, score = row["label"].strip(), row["score"].strip()
            if not label and not score:
                continue  # an empty row
            if not label:
                raise forms.ValidationError(f"row {number}: a choice needs a label")
            try:
                value = float(score) if score else None
            except ValueError:
                raise forms.ValidationError(f"row {number}: the score must be a number") from None
            choices.append({"label": label, "score": value})
        return choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.uses_json = self.is_bound and self.json_edited()
        if self.uses_json:
            try:
                config = json.loads(_text(cleaned.get("definition")))
            except ValueError as exc:
                self.add_error("definition", f"not valid JSON: {exc}")
                return cleaned
            if not isinstance(config, dict):
                self.add_error("definition", "the definition must be a JSON object")
                return cleaned
            cleaned["config"] = config
        elif self.kind == EvaluatorKind.LLM:
            cleaned["config"] = self._llm_config(cleaned)
        else:
            cleaned["config"] = self._code_config(cleaned)
        return cleaned

    def _llm_config(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "kind": "LLM",
            "template": _text(cleaned.get("template")),
            "system_prompt": _text(cleaned.get("system_prompt")),
            "choices": cleaned.get("choices", []),
            "explanations": bool(cleaned.get("explanations")),
            "output_mode": cleaned.get("output_mode") or "tool",
            "model": (cleaned.get("model") or "").strip(),
            "provider_id": cleaned["provider"].pk if cleaned.get("provider") else None,
            "granularity": cleaned.get("granularity") or "span",
        }
        for key in ("temperature", "max_tokens"):
            if cleaned.get(key) is not None:
                config[key] = cleaned[key]
        names = template_variables(config["template"])
        sources = posted_sources(cleaned.get("variables", []))
        config["variables"] = {n: sources[n] for n in names if sources.get(n)}
        return config

    def _code_config(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        check = cleaned.get("check") or ""
        config: dict[str, Any] = {
            "kind": "CODE",
            "check": check,
            "granularity": cleaned.get("granularity") or "span",
        }
        if check == "custom":
            config["code"] = _text(cleaned.get("code"))
        else:
            config["params"] = self._params(check, cleaned)
        for key in ("timeout_seconds", "memory_mb"):
            if cleaned.get(key) is not None:
                config[key] = cleaned[key]
        sources = posted_sources(cleaned.get("variables", []))
        config["variables"] = {n: sources[n] for n in CODE_VARIABLES if sources.get(n)}
        return config

    def _params(self, check: str, cleaned: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for spec in PARAMS.get(check, ()):
            name = param_field_name(check, spec.name)
            value = cleaned.get(name)
            if spec.kind == "bool":
                params[spec.name] = bool(value)
            elif spec.kind == "multi":
                params[spec.name] = list(value or [])
            elif value is None or value == "":
                continue  # the check's default, or its "required" error
            elif spec.kind == "lines":
                params[spec.name] = [line.strip() for line in value.splitlines() if line.strip()]
            elif spec.kind == "json":
                try:
                    params[spec.name] = json.loads(value)
                except ValueError as exc:
                    self.add_error(name, f"not valid JSON: {exc}")
            elif spec.kind == "number":
                params[spec.name] = _number(value)
            else:
                params[spec.name] = value
        return params

    # --- the services' errors ---

    def _field_for(self, path: str, message: str) -> str | None:
        head = path.split(".")[0]
        if head == "params":
            check = self.current_check()
            param = path.split(".")[1] if "." in path else ""
            name = param_field_name(check, param)
            return name if name in self.fields else "check"
        if head == "provider_id":
            return "provider"
        if head == "choices":
            return "choices"
        if head == "variables" or message.startswith("variable {"):
            return "variables"
        return head if head in self.fields and head != "definition_shown" else None

    def add_config_error(self, error: Exception | str, *, field: str | None = None) -> None:
        """Put the service's error (``EvaluatorConfigError``/``ValueError``, whose message names
        the field, several joined by "; ") next to the fields it is about; ``field`` when the
        caller knows it. With the JSON edited, everything goes to the JSON."""
        message = str(error)
        if self.uses_json:
            self.add_error("definition", message)
            return
        if field is not None:
            self.add_error(field, message)
            return
        for part in _ERROR_SPLIT.split(message):
            match = _ERROR_PREFIX.match(part)
            path, rest = (match["path"], part[match.end() :]) if match else ("", part)
            self.add_error(self._field_for(path, rest), part)
