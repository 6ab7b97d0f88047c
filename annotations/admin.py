from django.contrib import admin

from annotations.models import Annotation


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "target_kind",
        "annotator_kind",
        "label",
        "score",
        "source",
        "updated_at",
    ]
    list_filter = ["target_kind", "annotator_kind", "source", "name"]
    raw_id_fields = ["span", "trace", "session", "user"]
