from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from evalhub.identity.models import ApiKey
from evalhub.identity.services import api_key_new_secret


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    fields = ["name", "user", "scope", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        raw = None if change else api_key_new_secret(obj)
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(request, f"API key created. Copy it now; it is not shown again: {raw}")
