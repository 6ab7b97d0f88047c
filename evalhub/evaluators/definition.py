"""An evaluator version's definition: validated here, stored as JSON on ``EvaluatorVersion``.

Two shapes, told apart by ``kind``: an LLM judge (``LlmJudgeConfig``) and a code evaluator
(``CodeConfig``, a built-in check with parameters or custom Python).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalhub.evaluators.judge import template_variables
from evalhub.evaluators.variables import source_validate

Granularity = Literal["span", "trace", "session"]
OutputMode = Literal["tool", "json", "text"]
BuiltinCheck = Literal[
    "exact_match",
    "regex",
    "contains_keywords",
    "valid_json",
    "json_schema",
    "length_bounds",
    "latency_budget",
    "status_is_error",
    "pii",
    "string_similarity",
    "document_relevance",
]
BUILTIN_CHECKS: tuple[str, ...] = get_args(BuiltinCheck)
CodeCheck = Literal[BuiltinCheck, "custom"]


class EvaluatorConfigError(ValueError):
    """A definition that cannot be saved; the message names the field."""


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, Field(min_length=1, max_length=100)]
    score: float | None = None

    @field_validator("label")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


def _variables_check(variables: dict[str, str]) -> dict[str, str]:
    cleaned = {}
    for name, source in variables.items():
        source_validate(source.strip(), variable=name)
        cleaned[name] = source.strip()
    return cleaned


class LlmJudgeConfig(BaseModel):
    """A prompt template with ``{variables}``, the choices (rails) it may answer, how the
    answer is read, and the model call's settings. ``provider_id`` None: the default provider;
    ``model`` empty: the provider's default model."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["LLM"] = "LLM"
    template: Annotated[str, Field(min_length=1, max_length=100_000)]
    system_prompt: str = ""
    choices: Annotated[list[Choice], Field(min_length=2, max_length=50)]
    explanations: bool = True
    output_mode: OutputMode = "tool"
    model: str = ""
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    max_tokens: Annotated[int, Field(ge=1, le=32_000)] = 512
    provider_id: int | None = None
    granularity: Granularity = "span"
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _sources(cls, value: dict[str, str]) -> dict[str, str]:
        return _variables_check(value)

    @model_validator(mode="after")
    def _consistent(self) -> LlmJudgeConfig:
        lowered = [c.label.lower() for c in self.choices]
        if len(set(lowered)) != len(lowered):
            raise ValueError("choices: labels must be distinct (case-insensitively)")
        names = template_variables(self.template)
        if not names:
            raise ValueError("template: has no {variables}; it would judge nothing")
        for name in names:
            if name not in self.variables:
                # A variable named like a source maps to it by default.
                source_validate(name, variable=name)
        return self

    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    def score_of(self, label: str) -> float | None:
        return next((c.score for c in self.choices if c.label == label), None)

    def mapping(self) -> dict[str, str]:
        """Every template variable → its source (defaulting to the variable's own name)."""
        return {name: self.variables.get(name, name) for name in template_variables(self.template)}


class CodeConfig(BaseModel):
    """A built-in check with ``params``, or ``custom`` Python (``code`` defining
    ``evaluate(input, output, metadata, reference, span)``) run in the sandbox."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["CODE"] = "CODE"
    check: CodeCheck
    params: dict[str, Any] = Field(default_factory=dict)
    code: str = ""
    granularity: Granularity = "span"
    variables: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    memory_mb: Annotated[int, Field(ge=32, le=4096)] = 256

    @field_validator("variables")
    @classmethod
    def _sources(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"input", "output", "reference"}
        if unknown:
            raise ValueError(
                f"only input, output and reference can be mapped (got {', '.join(sorted(unknown))})"
            )
        return _variables_check(value)

    @model_validator(mode="after")
    def _consistent(self) -> CodeConfig:
        from evalhub.evaluators.checks import params_validate

        if self.check == "custom":
            if "def evaluate" not in self.code:
                raise ValueError(
                    "code: must define evaluate(input, output, metadata, reference, span)"
                )
            try:
                compile(self.code, "<evaluator>", "exec")
            except SyntaxError as exc:
                raise ValueError(f"code: line {exc.lineno}: {exc.msg}") from None
        else:
            self.params = params_validate(self.check, self.params)
        return self

    def mapping(self) -> dict[str, str]:
        defaults = {"input": "input", "output": "output", "reference": "reference"}
        return defaults | self.variables


EvaluatorConfig = LlmJudgeConfig | CodeConfig


def _readable(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def config_parse(data: dict[str, Any]) -> EvaluatorConfig:
    """The definition in ``data`` validated; ``EvaluatorConfigError`` says what is wrong."""
    if not isinstance(data, dict):
        raise EvaluatorConfigError("the definition must be a JSON object")
    kind = data.get("kind")
    model: type[BaseModel]
    if kind == "LLM":
        model = LlmJudgeConfig
    elif kind == "CODE":
        model = CodeConfig
    else:
        raise EvaluatorConfigError(f"kind: must be LLM or CODE (got {kind!r})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EvaluatorConfigError(_readable(exc)) from None
