"""Prompts as versioned objects: a prompt has versions (template, model, invocation
parameters), never edited — a change is a new version — and tags that name one version each
("production"). Writes, reads and rendering (a version's template with variables → chat
messages) for the Phoenix-shaped API, the pages and browser-run experiments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from evalhub.experiments.models import Prompt, PromptVersion, PromptVersionTag

MAX_NAME_LENGTH: Final = 255
TEMPLATE_TYPES: Final = ("CHAT", "STR")
TEMPLATE_FORMATS: Final = ("MUSTACHE", "F_STRING", "NONE")
ROLES: Final = ("user", "assistant", "model", "ai", "tool", "system", "developer")
_MUSTACHE: Final = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_F_STRING: Final = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_.]*)\}(?!\})")


class PromptInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _name(value: Any, field: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise PromptInvalid(field, "must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise PromptInvalid(field, f"is longer than {MAX_NAME_LENGTH} characters")
    return text


def _check_template(template: Any, template_type: str) -> dict[str, Any]:
    if not isinstance(template, Mapping):
        raise PromptInvalid("version.template", "must be a JSON object")
    kind = template.get("type")
    if template_type == "STR":
        if kind != "string" or not isinstance(template.get("template"), str):
            raise PromptInvalid("version.template", "a STR template is {type: string, template}")
        return dict(template)
    if kind != "chat" or not isinstance(template.get("messages"), list) or not template["messages"]:
        raise PromptInvalid("version.template", "a CHAT template is {type: chat, messages: [...]}")
    for index, message in enumerate(template["messages"]):
        where = f"version.template.messages[{index}]"
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            raise PromptInvalid(where, f"needs a role among {', '.join(ROLES)}")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise PromptInvalid(where, "content must be a string or a list of parts")
    return dict(template)


@transaction.atomic
def prompt_version_create(
    *,
    name: str | None,
    version: Mapping[str, Any],
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PromptVersion:
    """A new version of the prompt ``name`` (the prompt is created when there is none). Raises
    ``PromptInvalid`` naming the field (an empty or missing name among them)."""
    cleaned = _name(name, "prompt.name")
    template_type = version.get("template_type", "CHAT")
    if template_type not in TEMPLATE_TYPES:
        raise PromptInvalid("version.template_type", f"must be one of {', '.join(TEMPLATE_TYPES)}")
    template_format = version.get("template_format", "MUSTACHE")
    if template_format not in TEMPLATE_FORMATS:
        raise PromptInvalid(
            "version.template_format", f"must be one of {', '.join(TEMPLATE_FORMATS)}"
        )
    template = _check_template(version.get("template"), template_type)
    model_name = _name(version.get("model_name"), "version.model_name")
    parameters = version.get("invocation_parameters") or {}
    if not isinstance(parameters, Mapping):
        raise PromptInvalid("version.invocation_parameters", "must be a JSON object")
    prompt = Prompt.objects.select_for_update().filter(name=cleaned).first()
    if prompt is None:
        try:
            with transaction.atomic():
                prompt = Prompt.objects.create(
                    name=cleaned, description=description or "", metadata=dict(metadata or {})
                )
        except IntegrityError:
            prompt = Prompt.objects.select_for_update().get(name=cleaned)
    else:
        prompt.updated_at = timezone.now()
        prompt.save(update_fields=["updated_at"])
    return PromptVersion.objects.create(
        prompt=prompt,
        description=str(version.get("description") or ""),
        model_provider=str(version.get("model_provider") or "OPENAI")[:40],
        model_name=model_name,
        template=template,
        template_type=template_type,
        template_format=template_format,
        invocation_parameters=dict(parameters),
        tools=version.get("tools"),
        response_format=version.get("response_format"),
    )


@transaction.atomic
def prompt_tag_set(*, version: PromptVersion, name: str, description: str = "") -> PromptVersionTag:
    """Point the tag ``name`` of the version's prompt at ``version`` (moving it if needed)."""
    cleaned = _name(name, "name")[:100]
    tag, _ = PromptVersionTag.objects.update_or_create(
        prompt_id=version.prompt_id,
        name=cleaned,
        defaults={"version": version, "description": description or ""},
    )
    return tag


@transaction.atomic
def prompt_delete(*, prompt: Prompt) -> None:
    prompt.delete()


# --- reads ------------------------------------------------------------------------------------


def prompt_get(identifier: str) -> Prompt | None:
    """A prompt by name, else by numeric id."""
    text = str(identifier).strip()
    found = Prompt.objects.filter(name=text).first()
    if found is None and text.isdigit() and len(text) <= 18:
        found = Prompt.objects.filter(pk=int(text)).first()
    return found


def prompt_list() -> QuerySet[Prompt]:
    return Prompt.objects.order_by("name")


def prompt_versions(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    """A prompt's versions, newest first."""
    return PromptVersion.objects.filter(prompt=prompt).order_by("-id")


def prompt_version_get(identifier: str | int) -> PromptVersion | None:
    text = str(identifier).strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return PromptVersion.objects.select_related("prompt").filter(pk=int(text)).first()


def prompt_version_latest(*, prompt: Prompt) -> PromptVersion | None:
    return prompt_versions(prompt=prompt).first()


def prompt_version_by_tag(*, prompt: Prompt, tag: str) -> PromptVersion | None:
    found = PromptVersionTag.objects.select_related("version").filter(prompt=prompt, name=tag)
    first = found.first()
    return None if first is None else first.version


# --- rendering --------------------------------------------------------------------------------


def template_variables(version: PromptVersion) -> list[str]:
    """The variables a version's template uses, in order of first use."""
    pattern = _pattern(version.template_format)
    if pattern is None:
        return []
    return list(
        dict.fromkeys(m.group(1) for text in _texts(version) for m in pattern.finditer(text))
    )


def _pattern(template_format: str) -> re.Pattern[str] | None:
    return {"MUSTACHE": _MUSTACHE, "F_STRING": _F_STRING}.get(template_format)


def _texts(version: PromptVersion) -> list[str]:
    if version.template_type == "STR":
        return [version.template.get("template", "")]
    texts = []
    for message in version.template.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [p.get("text", "") for p in content if isinstance(p, Mapping)]
    return texts


def _fill(text: str, template_format: str, values: Mapping[str, str]) -> str:
    pattern = _pattern(template_format)
    if pattern is None:
        return text
    return pattern.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def prompt_render(version: PromptVersion, values: Mapping[str, str]) -> list[dict[str, str]]:
    """The version's template with ``values`` filled in, as chat messages."""
    fmt = version.template_format
    if version.template_type == "STR":
        return [{"role": "user", "content": _fill(version.template["template"], fmt, values)}]
    messages = []
    for message in version.template["messages"]:
        content = message["content"]
        if not isinstance(content, str):
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        role = {"model": "assistant", "ai": "assistant", "developer": "system"}.get(
            message["role"], message["role"]
        )
        messages.append({"role": role, "content": _fill(content, fmt, values)})
    return messages


def invocation_settings(version: PromptVersion) -> dict[str, Any]:
    """The version's invocation parameters as chat-completion arguments (temperature, ...)."""
    parameters = version.invocation_parameters or {}
    inner = (
        parameters.get(parameters.get("type", ""), parameters)
        if "type" in parameters
        else parameters
    )
    allowed = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop")
    return {k: v for k, v in inner.items() if k in allowed}


# An example's fields a prompt variable can be mapped from (``input.question``…).
FIELDS: Final = ("input", "expected", "metadata")


class MappingInvalid(ValueError):
    pass


def mapping_check(variables: Mapping[str, str], template_vars: list[str]) -> dict[str, str]:
    """Each template variable → an example field path (default: ``input.<variable>``)."""
    cleaned = {}
    for name in template_vars:
        source = (variables.get(name) or f"input.{name}").strip()
        if source.split(".", 1)[0] not in FIELDS:
            raise MappingInvalid(
                f"variables.{name}: {source!r} must start with input, expected or metadata"
            )
        cleaned[name] = source
    return cleaned
