"""Reads of rubrics (annotation configs): one by id or name, pages of them, those enabled for a
project. (The annotate panel's list of a project's rubrics, ``annotation_configs_enabled``, stays
in ``annotations.store.selectors``: the trace and session pages below this layer show it.)"""

from __future__ import annotations

from django.db.models import Prefetch

from annotations.models import AnnotationConfig
from annotations.store.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from evalhub.core.paging import Page, page_from_id
from tracing.models import Project


def annotation_config_get(id_or_name: str) -> AnnotationConfig | None:
    """The config with this numeric id, else with this name."""
    ident = id_or_name.strip()
    if ident.isdigit():
        config = AnnotationConfig.objects.filter(pk=int(ident)).first()
        if config is not None:
            return config
    return AnnotationConfig.objects.filter(name=ident).first()


def annotation_config_list(
    *, project: Project | None = None, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[AnnotationConfig]:
    """One page of annotation configs (with ``project``: those enabled for it), newest first.

    The cursor is the id of the first config of the next page, as in ``annotation_list``.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    query = AnnotationConfig.objects.order_by("-id")
    if project is not None:
        query = query.filter(projects=project)
    return page_from_id(query, cursor=cursor, limit=limit)


def annotation_config_enabled_get(*, project: Project, name: str) -> AnnotationConfig | None:
    """The rubric of this name, if it is enabled for ``project``."""
    return AnnotationConfig.objects.filter(
        name=name, projectannotationconfig__project=project
    ).first()


def annotation_configs_with_projects() -> list[AnnotationConfig]:
    """Every rubric by name, each with the projects it is enabled for loaded."""
    return list(
        AnnotationConfig.objects.order_by("name").prefetch_related(
            Prefetch("projects", queryset=Project.objects.order_by("name"))
        )
    )


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "annotation_config_enabled_get",
    "annotation_config_get",
    "annotation_config_list",
    "annotation_configs_with_projects",
]
