"""The draft form of the alignment workspace: the parts of a judge's definition one tunes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from evalhub.providers.models import Provider
from tracing.models import Project


def choices_text(choices: list[dict[str, Any]]) -> str:
    """``[{"label": "pass", "score": 1}]`` → ``pass = 1`` lines."""
    lines = []
    for choice in choices:
        score = choice.get("score")
        lines.append(choice["label"] if score is None else f"{choice['label']} = {score:g}")
    return "\n".join(lines)


def choices_parse(text: str) -> list[dict[str, Any]]:
    """``pass = 1`` lines → choices; raises ``forms.ValidationError`` naming the line."""
    choices = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, _, score = line.partition("=")
        entry: dict[str, Any] = {"label": label.strip()}
        if score.strip():
            try:
                entry["score"] = float(score)
            except ValueError:
                raise forms.ValidationError(f"line {number}: the score must be a number") from None
        choices.append(entry)
    return choices


class DraftForm(forms.Form):
    """A draft over the current version's definition; only what is here changes."""

    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"),
        to_field_name="name",
        empty_label="Choose the project whose labelled items to use",
    )
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    template = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}))
    choices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="One label a line, with its score after '=' (pass = 1).",
    )
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.order_by("name"), required=False, empty_label="Default provider"
    )
    model = forms.CharField(required=False, help_text="Empty: the provider's default model.")
    max_items = forms.IntegerField(min_value=1, max_value=2000, initial=500, label="At most")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        base: dict[str, Any],
        initial: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.base = base
        initial = {
            "system_prompt": base.get("system_prompt", ""),
            "template": base.get("template", ""),
            "choices": choices_text(base.get("choices", [])),
            "provider": base.get("provider_id"),
            "model": base.get("model", ""),
            **(initial or {}),
        }
        super().__init__(data, initial=initial, **kwargs)

    def clean_choices(self) -> list[dict[str, Any]]:
        return choices_parse(self.cleaned_data["choices"])

    def draft(self) -> dict[str, Any]:
        """The draft definition: the current one with this form's fields."""
        data = self.cleaned_data
        provider = data.get("provider")
        return {
            **self.base,
            "system_prompt": data.get("system_prompt", ""),
            "template": data["template"].replace("\r\n", "\n"),
            "choices": data["choices"],
            "provider_id": provider.pk if provider is not None else None,
            "model": data.get("model", "").strip(),
        }


class GoldenForm(forms.Form):
    name = forms.CharField(max_length=200, label="Dataset")
