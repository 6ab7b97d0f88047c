from django.contrib import admin

from tracing.models import ModelPrice, Project, Session, Span, Trace


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["model_prefix", "provider", "prompt_per_million", "completion_per_million"]
    list_editable = ["prompt_per_million", "completion_per_million"]
    search_fields = ["model_prefix", "provider"]


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ["trace_id", "project", "root_span_name", "start_time", "span_count"]
    list_filter = ["project"]
    search_fields = ["trace_id"]
    raw_id_fields = ["session"]


@admin.register(Span)
class SpanAdmin(admin.ModelAdmin):
    list_display = ["span_id", "name", "span_kind", "status_code", "start_time", "project"]
    list_filter = ["project", "span_kind", "status_code"]
    search_fields = ["span_id", "name"]
    raw_id_fields = ["trace", "session"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["session_id", "project", "start_time", "trace_count"]
    list_filter = ["project"]
    search_fields = ["session_id"]
