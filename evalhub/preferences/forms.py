from __future__ import annotations

from typing import Any

from django import forms

from evalhub.core.forms import form_field
from evalhub.preferences.zones import zone_names


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        required=False,
        label="Time zone",
        help_text="Times on every page are shown in this zone; hover a time for UTC.",
    )

    def __init__(self, *args: Any, browser_zone: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        browser = f"Your browser's ({browser_zone})" if browser_zone else "Your browser's"
        form_field(self, "time_zone", forms.ChoiceField).choices = [
            ("", browser),
            *((n, n) for n in zone_names()),
        ]
