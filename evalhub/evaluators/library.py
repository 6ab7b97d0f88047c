"""The judge template library: prompts written for EvalHub, each with its choices (label →
score) and the variable mapping that fits OpenInference spans, kept as a table in
``library.toml``. "New evaluator from template" copies one into an evaluator's first version,
where it can be edited freely."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _unwrap(text: str) -> str:
    """Join the lines of each prose paragraph (the source wraps them at 100 columns); tag lines
    (``<question>``) and placeholder lines (``{input}``) stay on their own."""

    def keeps_own_line(line: str) -> bool:
        stripped = line.strip()
        return not stripped or stripped.startswith(("<", "{")) or stripped.endswith((">", "}"))

    out: list[str] = []
    for line in text.split("\n"):
        if out and not keeps_own_line(line) and not keeps_own_line(out[-1]):
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class JudgeTemplate:
    key: str
    title: str
    description: str
    template: str
    choices: list[tuple[str, float]]
    variables: dict[str, str] = field(default_factory=dict)
    granularity: str = "span"
    system_prompt: str = (
        "You are a careful evaluator of AI application outputs. Judge only from the material "
        "you are given, follow the criteria literally, and do not reward confident tone."
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", _unwrap(self.template))

    def config(self) -> dict[str, Any]:
        """An LLM judge definition (``evalhub.evaluators.definition.LlmJudgeConfig``) from this template."""
        return {
            "kind": "LLM",
            "template": self.template,
            "system_prompt": self.system_prompt,
            "choices": [{"label": label, "score": score} for label, score in self.choices],
            "explanations": True,
            "output_mode": "tool",
            "model": "",
            "temperature": 0.0,
            "max_tokens": 512,
            "provider_id": None,
            "granularity": self.granularity,
            "variables": copy.deepcopy(self.variables),
        }


def _library() -> list[JudgeTemplate]:
    """The templates of ``library.toml`` (data, not code: one table row per template)."""
    with Path(__file__).with_name("library.toml").open("rb") as file:
        rows = tomllib.load(file)["template"]
    return [
        JudgeTemplate(
            key=row["key"],
            title=row["title"],
            description=row["description"],
            template=row["template"],
            choices=[(choice["label"], float(choice["score"])) for choice in row["choices"]],
            variables=dict(row.get("variables", {})),
            granularity=row.get("granularity", "span"),
        )
        for row in rows
    ]


TEMPLATES: list[JudgeTemplate] = _library()

TEMPLATES_BY_KEY = {template.key: template for template in TEMPLATES}


def template_get(key: str) -> JudgeTemplate:
    try:
        return TEMPLATES_BY_KEY[key]
    except KeyError:
        raise KeyError(f"no judge template {key!r}") from None
