from django.contrib import admin
from django.http import HttpRequest

from evalhub.retention.models import RetentionPolicy, RetentionSweep


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "days", "updated_at"]


@admin.register(RetentionSweep)
class RetentionSweepAdmin(admin.ModelAdmin):
    list_display = ["project", "cutoff", "traces", "spans", "annotations", "started_at"]
    readonly_fields = [f.name for f in RetentionSweep._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a pass is what the sweep did, written by the sweep only
