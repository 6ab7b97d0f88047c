"""The labeling queues in Django's admin."""

from django.contrib import admin

from annotations.queues.models import LabelingQueue, LabelingQueueItem, LabelingQueueReview


@admin.register(LabelingQueue)
class LabelingQueueAdmin(admin.ModelAdmin):
    list_display = ["name", "item_kind", "assignment_mode", "created_at"]
    list_filter = ["item_kind", "assignment_mode"]
    search_fields = ["name"]
    filter_horizontal = ["configs", "assignees"]
    readonly_fields = ["rotation"]


@admin.register(LabelingQueueItem)
class LabelingQueueItemAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "project", "assigned_to", "reserved_by", "reserved_until"]
    list_filter = ["queue"]
    raw_id_fields = ["span", "trace", "session", "assigned_to", "reserved_by"]


@admin.register(LabelingQueueReview)
class LabelingQueueReviewAdmin(admin.ModelAdmin):
    list_display = ["item", "user", "state", "updated_at"]
    list_filter = ["state", "item__queue"]
    raw_id_fields = ["item", "user"]
