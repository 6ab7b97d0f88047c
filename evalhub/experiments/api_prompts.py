"""Prompts over the API (``/v1``), shaped like Phoenix's so that
``phoenix.client.Client().prompts`` works unchanged: create a version (the prompt is created
with its first), get the latest, a version by id, a version by tag; tag versions; list a
prompt's versions.

Lists are paged as Phoenix pages them (``cursor``/``limit``, ``{"data", "next_cursor"}``; a
cursor this server did not hand out is a 422), by ``evalhub.core.paging``. Their rows are the
dicts Phoenix's client reads, whose optional keys are left out rather than null."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from evalhub.core.paging import Page, Pages, page_by_text, page_from_id, paged
from evalhub.experiments.models import Prompt, PromptVersion
from evalhub.experiments.prompts import (
    PromptInvalid,
    prompt_delete,
    prompt_get,
    prompt_list,
    prompt_tag_set,
    prompt_version_by_tag,
    prompt_version_create,
    prompt_version_get,
    prompt_version_latest,
    prompt_versions,
)

router = Router(tags=["prompts"])


class PromptCreateIn(Schema):
    prompt: dict[str, Any]
    version: dict[str, Any]


class TagIn(Schema):
    name: str
    description: str | None = None


def version_out(version: PromptVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(version.pk),
        "model_provider": version.model_provider,
        "model_name": version.model_name,
        "template": version.template,
        "template_type": version.template_type,
        "template_format": version.template_format,
        "invocation_parameters": version.invocation_parameters,
    }
    if version.description:
        out["description"] = version.description
    if version.tools is not None:
        out["tools"] = version.tools
    if version.response_format is not None:
        out["response_format"] = version.response_format
    return out


def _prompt_out(prompt: Prompt) -> dict[str, Any]:
    return {
        "id": str(prompt.pk),
        "name": prompt.name,
        "description": prompt.description,
        "metadata": prompt.metadata,
    }


def _prompt(identifier: str) -> Prompt:
    found = prompt_get(identifier)
    if found is None:
        raise HttpError(404, f"prompt {identifier!r} not found")
    return found


def _version(identifier: str) -> PromptVersion:
    found = prompt_version_get(identifier)
    if found is None:
        raise HttpError(404, f"prompt version {identifier!r} not found")
    return found


@router.post("/prompts")
def prompts_create(request: HttpRequest, body: PromptCreateIn) -> dict[str, Any]:
    """A new version of the prompt ``prompt.name`` (created with its first version)."""
    try:
        version = prompt_version_create(
            name=body.prompt.get("name"),
            version=body.version,
            description=body.prompt.get("description"),
            metadata=body.prompt.get("metadata"),
        )
    except PromptInvalid as exc:
        raise HttpError(400, str(exc)) from None
    return {"data": version_out(version)}


_Row = dict[str, Any]  # a list's row as Phoenix's client reads it


@router.get("/prompts", response=list[_Row])
@paged(invalid_status=422)
def prompts_list(request: HttpRequest) -> Pages:
    """Every prompt, by name, a page at a time."""

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        page = page_by_text(prompt_list(), cursor=cursor, limit=limit, field="name")
        return page.map(_prompt_out)

    return pages


@router.delete("/prompts/{name:prompt}", response={204: None})
def prompts_delete(request: HttpRequest, prompt: str) -> Status:
    prompt_delete(prompt=_prompt(prompt))
    return Status(204, None)


@router.get("/prompts/{name:prompt}/latest")
def prompts_latest(request: HttpRequest, prompt: str) -> dict[str, Any]:
    """The newest version of a prompt (by name or id)."""
    version = prompt_version_latest(prompt=_prompt(prompt))
    if version is None:
        raise HttpError(404, f"prompt {prompt!r} has no versions")
    return {"data": version_out(version)}


@router.get("/prompts/{name:prompt}/versions", response=list[_Row])
@paged(invalid_status=422)
def prompts_versions(request: HttpRequest, prompt: str) -> Pages:
    """A prompt's versions, newest first, a page at a time."""
    versions = prompt_versions(prompt=_prompt(prompt))

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        return page_from_id(versions, cursor=cursor, limit=limit).map(version_out)

    return pages


@router.get("/prompts/{name:prompt}/tags/{name:tag}")
def prompts_by_tag(request: HttpRequest, prompt: str, tag: str) -> dict[str, Any]:
    """The version a tag of the prompt names."""
    version = prompt_version_by_tag(prompt=_prompt(prompt), tag=tag)
    if version is None:
        raise HttpError(404, f"prompt {prompt!r} has no tag {tag!r}")
    return {"data": version_out(version)}


@router.get("/prompt_versions/{prompt_version_id}")
def prompt_versions_get(request: HttpRequest, prompt_version_id: str) -> dict[str, Any]:
    return {"data": version_out(_version(prompt_version_id))}


@router.get("/prompt_versions/{prompt_version_id}/tags", response=list[_Row])
@paged(invalid_status=422)
def prompt_versions_tags(request: HttpRequest, prompt_version_id: str) -> Pages:
    """A version's tags, by name, a page at a time."""
    tags = _version(prompt_version_id).tags.all()

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        page = page_by_text(tags, cursor=cursor, limit=limit, field="name")
        return page.map(lambda t: {"id": str(t.pk), "name": t.name, "description": t.description})

    return pages


@router.post("/prompt_versions/{prompt_version_id}/tags", response={204: None})
def prompt_versions_tag(request: HttpRequest, prompt_version_id: str, body: TagIn) -> Status:
    """Point a tag of the prompt at this version (moving it from another)."""
    try:
        prompt_tag_set(
            version=_version(prompt_version_id), name=body.name, description=body.description or ""
        )
    except PromptInvalid as exc:
        raise HttpError(400, str(exc)) from None
    return Status(204, None)
