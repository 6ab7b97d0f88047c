"""Online-task pages, one URL namespace (``tasks``): the Tasks pages and run logs
(``urls_tasks_pages``), and the project's score trends (``urls_trends``)."""

from evalhub.tasks.urls_pages import urlpatterns as page_patterns
from evalhub.trends.urls import urlpatterns as trend_patterns

app_name = "tasks"
urlpatterns = [*page_patterns, *trend_patterns]
