"""System checks: every route is classified by the access policy (``evalhub.identity.policy``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register


@register(Tags.security, Tags.urls)
def check_access_policy(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from evalhub.identity.policy import unclassified

    return [
        Error(
            f"the route {route.name!r} ({route.route or '/'}) is not in the access policy",
            hint="Add it to PAGES or API in evalhub/identity/policy.py with the role or scope it needs; "
            "until then only admins may use it.",
            id="evalhub.E001",
        )
        for route in unclassified()
    ]
