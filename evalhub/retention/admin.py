from django.contrib import admin

from evalhub.retention.models import RetentionPolicy, RetentionSweep


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "days", "updated_at"]


@admin.register(RetentionSweep)
class RetentionSweepAdmin(admin.ModelAdmin):
    list_display = ["project", "cutoff", "traces", "spans", "annotations", "started_at"]
    readonly_fields = [f.name for f in RetentionSweep._meta.fields]
