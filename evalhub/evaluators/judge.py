"""LLM judge: render a prompt template, build the request for an output mode, read the answer.

Templates use ``{name}`` placeholders (``{{`` and ``}}`` for literal braces). Rendering is a plain
substitution, never ``str.format``: a value cannot reach attributes or format specs.

Output modes:

- ``tool``: the model must call a function whose JSON schema has ``label`` as an enum of the
  choices (plus ``explanation`` when explanations are on).
- ``json``: JSON structured output with the same schema.
- ``text``: free text snapped to exactly one choice, case-insensitively; none or several choices
  found is an unparseable answer (an error), never a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
TOOL_NAME = "record_evaluation"


class TemplateVariableMissing(KeyError):
    """A template variable without a value; ``name`` is the variable, ``source`` where it was
    looked for (when it was)."""

    def __init__(self, name: str, detail: str = "", *, source: str = "") -> None:
        self.name, self.detail, self.source = name, detail, source
        super().__init__(name)

    def __str__(self) -> str:
        return f"missing variable {{{self.name}}}" + (f": {self.detail}" if self.detail else "")

    @property
    def reason(self) -> str:
        """Why, the same for every item it happens to: ``missing variable {output}: output has
        no value``."""
        if self.source:
            return f"missing variable {{{self.name}}}: {self.source} has no value"
        return f"missing variable {{{self.name}}}"


class UnparseableAnswer(ValueError):
    """The model's answer names no choice, several, or is not the requested shape."""


def template_variables(template: str) -> list[str]:
    """The distinct ``{variables}`` of ``template``, in order of first use."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name and name not in names:
            names.append(name)
    return names


def template_render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]``."""

    def substitute(match: re.Match[str]) -> str:
        piece = match.group(0)
        if piece == "{{":
            return "{"
        if piece == "}}":
            return "}"
        name = match.group(1)
        if name not in values:
            raise TemplateVariableMissing(name)
        return str(values[name])

    return _PLACEHOLDER.sub(substitute, template)


def answer_schema(labels: Sequence[str], *, explanations: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    if explanations:
        # Explanation first: the model reasons before it commits to a label.
        properties["explanation"] = {
            "type": "string",
            "description": "A short justification of the label, citing the evidence.",
        }
        required.append("explanation")
    properties["label"] = {"type": "string", "enum": list(labels)}
    required.append("label")
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def output_instructions(labels: Sequence[str], *, mode: str, explanations: bool) -> str:
    quoted = ", ".join(f'"{label}"' for label in labels)
    if mode == "tool":
        return f"Record your verdict by calling the {TOOL_NAME} function. The label is one of {quoted}."
    if mode == "json":
        fields = '"explanation" (a short justification) and "label"' if explanations else '"label"'
        return f"Answer with a JSON object with {fields}; the label is one of {quoted}."
    if explanations:
        return (
            "First explain your reasoning in a few sentences on a line starting with "
            f'"EXPLANATION:", then give your verdict on a last line "LABEL: <label>", '
            f"where <label> is exactly one of {quoted}."
        )
    return f"Answer with exactly one word or phrase from: {quoted}. Nothing else."


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    messages: list[dict[str, str]]
    tools: list[dict[str, Any]] | None
    tool_choice: dict[str, Any] | None
    response_format: dict[str, Any] | None

    @property
    def rendered_prompt(self) -> str:
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)


def judge_request(
    *,
    template: str,
    values: Mapping[str, str],
    system_prompt: str,
    labels: Sequence[str],
    mode: str,
    explanations: bool,
) -> JudgeRequest:
    prompt = template_render(template, values).rstrip()
    prompt += "\n\n" + output_instructions(labels, mode=mode, explanations=explanations)
    messages = []
    if system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    messages.append({"role": "user", "content": prompt})
    schema = answer_schema(labels, explanations=explanations)
    tools = tool_choice = response_format = None
    if mode == "tool":
        tools = [
            {
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": "Record the evaluation's label and explanation.",
                    "parameters": schema,
                },
            }
        ]
        tool_choice = {"type": "function", "function": {"name": TOOL_NAME}}
    elif mode == "json":
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "evaluation", "schema": schema, "strict": True},
        }
    return JudgeRequest(messages, tools, tool_choice, response_format)


@dataclass(frozen=True, slots=True)
class JudgeAnswer:
    label: str
    explanation: str | None


def _canonical(label: Any, labels: Sequence[str]) -> str:
    if not isinstance(label, str):
        raise UnparseableAnswer(f"the label is not a string: {label!r}")
    wanted = label.strip().lower()
    for choice in labels:
        if choice.lower() == wanted:
            return choice
    raise UnparseableAnswer(f"the label {label!r} is not one of the choices")


def _from_json_object(text: str, labels: Sequence[str], explanations: bool) -> JudgeAnswer:
    stripped = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, flags=re.DOTALL)
    if fence:
        stripped = fence.group(1)
    try:
        data = json.loads(stripped)
    except ValueError:
        raise UnparseableAnswer(f"not valid JSON: {text[:200]!r}") from None
    if not isinstance(data, dict) or "label" not in data:
        raise UnparseableAnswer("the JSON answer has no label")
    explanation = data.get("explanation") if explanations else None
    if explanation is not None and not isinstance(explanation, str):
        explanation = json.dumps(explanation)
    return JudgeAnswer(_canonical(data["label"], labels), explanation)


def snap_label(text: str, labels: Sequence[str]) -> str:
    """The one choice named in ``text`` (whole words, any case); else ``UnparseableAnswer``."""
    cleaned = text.strip().strip("\"'`*.").strip()
    exact = [label for label in labels if label.lower() == cleaned.lower()]
    if exact:
        return exact[0]
    spans: dict[str, list[tuple[int, int]]] = {}
    for label in labels:
        pattern = r"(?<![\w-])" + re.escape(label) + r"(?![\w-])"
        spans[label] = [m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE)]
    # An occurrence inside a longer choice's occurrence ("relevant" in "not relevant") is part
    # of that choice, not a second answer.
    found = []
    for label, occurrences in spans.items():
        others = [s for other, spans_ in spans.items() if other != label for s in spans_]
        if any(not any(a <= start and end <= b for a, b in others) for start, end in occurrences):
            found.append(label)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnparseableAnswer(f"the answer names none of the choices: {text[:200]!r}")
    raise UnparseableAnswer(
        f"the answer names several choices ({', '.join(found)}): {text[:200]!r}"
    )


def _from_text(text: str, labels: Sequence[str], explanations: bool) -> JudgeAnswer:
    if not explanations:
        return JudgeAnswer(snap_label(text, labels), None)
    label_lines = re.findall(r"^\s*\**label\**\s*:\s*(.+)$", text, flags=re.IGNORECASE | re.M)
    explanation_match = re.search(
        r"explanation\**\s*:\s*(.*?)(?=^\s*\**label\**\s*:|\Z)",
        text,
        flags=re.IGNORECASE | re.DOTALL | re.M,
    )
    explanation = explanation_match.group(1).strip() if explanation_match else None
    if label_lines:
        return JudgeAnswer(snap_label(label_lines[-1], labels), explanation)
    return JudgeAnswer(snap_label(text, labels), explanation or None)


def judge_parse(
    *,
    content: str | None,
    tool_calls: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    mode: str,
    explanations: bool,
) -> JudgeAnswer:
    """The label (one of ``labels``, canonical case) and explanation in the model's answer."""
    if mode == "tool":
        call = next(
            (c for c in tool_calls if c.get("name") == TOOL_NAME),
            tool_calls[0] if tool_calls else None,
        )
        if call is not None:
            return _from_json_object(str(call.get("arguments") or ""), labels, explanations)
        if content and content.strip():
            # Some OpenAI-compatible servers ignore tool_choice and answer in text.
            try:
                return _from_json_object(content, labels, explanations)
            except UnparseableAnswer:
                return _from_text(content, labels, explanations)
        raise UnparseableAnswer("the model called no function and gave no answer")
    if not content or not content.strip():
        raise UnparseableAnswer("the model's answer is empty")
    if mode == "json":
        return _from_json_object(content, labels, explanations)
    return _from_text(content, labels, explanations)
