from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"

    def ready(self) -> None:
        from annotations.models import Annotation
        from tracing.store.services import PROJECT_DELETE_FIRST

        PROJECT_DELETE_FIRST.append(
            lambda project: Annotation.objects.filter(project=project).delete()
        )
