"""One name for a result (``annotations.naming``).

Task results were stored as ``eval.<evaluator>``; they now carry the evaluator's name, as
results logged through the API always did. The unique key of an annotation gains its class
(human or machine), so a person's label and a judge's result of the same name on the same
target both exist.

Forward: the old unique constraints go, task-written machine results lose the ``eval.`` prefix,
and where that makes two machine results with the same target, name and identifier the newest
(by ``updated_at``, then id) is kept; then the new constraints are added. Backward: task-written
machine results get the prefix back, rows that collide under the old key (target, name,
identifier) keep the newest, and the old constraints return.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models import BooleanField, Case, Count, F, Q, Value, When
from django.db.models.functions import Concat, Length, Substr

PREFIX = "eval."
MACHINE = ("LLM", "CODE")
TARGETS = ("span", "trace", "session")


def _human() -> Case:
    return Case(
        When(annotator_kind="HUMAN", then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def _keep_newest(Annotation: Any, *, with_class: bool) -> int:
    """Delete all but the newest annotation of each (target, name, identifier[, class]) group
    that has more than one; returns how many were deleted."""
    deleted = 0
    for target in TARGETS:
        rows = Annotation.objects.filter(**{f"{target}__isnull": False})
        keys = [target, "name", "identifier"]
        if with_class:
            rows = rows.annotate(human=_human())
            keys.append("human")
        groups = rows.values(*keys).annotate(n=Count("id")).filter(n__gt=1).order_by()
        for group in groups.iterator():
            same = Annotation.objects.filter(
                **{target: group[target], "name": group["name"], "identifier": group["identifier"]}
            )
            if with_class and group["human"]:
                same = same.filter(annotator_kind="HUMAN")
            elif with_class:
                same = same.exclude(annotator_kind="HUMAN")
            ids = list(same.order_by("-updated_at", "-id").values_list("id", flat=True))
            deleted += Annotation.objects.filter(id__in=ids[1:]).delete()[0]
    return deleted


def strip_task_prefix(apps: Any, schema_editor: Any) -> None:
    Annotation = apps.get_model("annotations", "Annotation")
    Annotation.objects.filter(
        source="TASK", annotator_kind__in=MACHINE, name__startswith=PREFIX
    ).exclude(name=PREFIX).update(name=Substr("name", len(PREFIX) + 1))
    _keep_newest(Annotation, with_class=True)


def restore_task_prefix(apps: Any, schema_editor: Any) -> None:
    Annotation = apps.get_model("annotations", "Annotation")
    Annotation.objects.filter(source="TASK", annotator_kind__in=MACHINE).exclude(
        name__startswith=PREFIX
    ).annotate(length=Length("name")).filter(length__lte=255 - len(PREFIX)).update(
        name=Concat(Value(PREFIX), F("name"), output_field=models.CharField())
    )
    _keep_newest(Annotation, with_class=False)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_merge_queues_datasets"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="annotation", name="annotation_unique_span"),
        migrations.RemoveConstraint(model_name="annotation", name="annotation_unique_trace"),
        migrations.RemoveConstraint(model_name="annotation", name="annotation_unique_session"),
        migrations.RunPython(strip_task_prefix, restore_task_prefix),
        migrations.AddConstraint(
            model_name="annotation",
            constraint=models.UniqueConstraint(
                F("span"),
                F("name"),
                F("identifier"),
                _human(),
                condition=Q(span__isnull=False),
                name="annotation_unique_span_class",
            ),
        ),
        migrations.AddConstraint(
            model_name="annotation",
            constraint=models.UniqueConstraint(
                F("trace"),
                F("name"),
                F("identifier"),
                _human(),
                condition=Q(trace__isnull=False),
                name="annotation_unique_trace_class",
            ),
        ),
        migrations.AddConstraint(
            model_name="annotation",
            constraint=models.UniqueConstraint(
                F("session"),
                F("name"),
                F("identifier"),
                _human(),
                condition=Q(session__isnull=False),
                name="annotation_unique_session_class",
            ),
        ),
    ]
