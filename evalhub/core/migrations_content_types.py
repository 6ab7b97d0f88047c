"""The one rule the state-only "models move to their apps" migrations share: the moved
models' content types (and so their permissions) follow them to their new app, and back."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def content_types_follow(moved: dict[tuple[str, str], str]) -> migrations.RunPython:
    """A reversible operation relabelling ``(old app, model) → new app`` content types; where
    the target already has one (a ``migrate`` that created it first), the old one goes."""

    def relabel(apps: Any, schema_editor: Any, forward: bool = True) -> None:
        content_type = apps.get_model("contenttypes", "ContentType")
        for (old, model), new in moved.items():
            source, target = (old, new) if forward else (new, old)
            if content_type.objects.filter(app_label=target, model=model).exists():
                content_type.objects.filter(app_label=source, model=model).delete()
            else:
                content_type.objects.filter(app_label=source, model=model).update(app_label=target)

    def relabel_back(apps: Any, schema_editor: Any) -> None:
        relabel(apps, schema_editor, forward=False)

    return migrations.RunPython(relabel, relabel_back)
