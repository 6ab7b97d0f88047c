"""Every page of EvalHub in Chromium, as an admin on the demo data, at 1280 x 800 and 1440 x 900:
no horizontal page overflow (tables scroll inside their card) and a clean browser console.

The pages are the routes of the URL configuration (``evalhub.identity.policy.routes()``): a new route is
either crawled — its arguments filled from the data below — or named in ``NOT_PAGES`` with the
reason; otherwise the test fails, so a new page cannot escape the crawl.

With ``EVALHUB_SHOTS=<dir>`` each page is also saved as a screenshot there (for a visual check).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotations.datasets.services import dataset_create
from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent, version_examples
from annotations.models import AnnotationConfig
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from evalhub.alignment.models import AlignmentRun
from evalhub.budgets.services import budget_create
from evalhub.evaluators.models import Evaluator
from evalhub.experiments.services import RunInput, experiment_create, run_record
from evalhub.experiments.task_target import dataset_task_save
from evalhub.identity.models import ApiKey
from evalhub.identity.policy import routes
from evalhub.identity.services import api_key_create
from evalhub.monitors.automations import AutomationInput, automation_create
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.services import MonitorInput, monitor_create
from evalhub.providers.models import Provider
from evalhub.shadow.models import ShadowResult, ShadowVersion
from evalhub.tasks.models import Task, TaskRun
from tracing.demo import demo_seed
from tracing.models import Project, Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)

# Routes that are not pages to look at, and why.
NOT_PAGES = {
    "login": "crawled logged out, first",
    "logout": "POST only",
    "favicon": "an image (fetched below)",
    "set-password": "needs a one-time token (tests/evalhub/identity/test_views.py)",
    "tracing:export": "a file download",
    "tracing:delete": "POST only (the confirmation is on the list page)",
    "evaluators:test-on-span": "an htmx fragment posted by the evaluator form",
    "evaluators:form-variables": "an htmx fragment of the evaluator form",
    "evaluators:provider-test": "POST only",
    "evaluators:playground": "POST only (the playground is on the evaluator's page)",
    "annotations:config-delete": "POST only",
    "annotations:annotate": "the annotate form, an htmx fragment of the trace page",
    "annotations:queue-add-selected": "POST only (from the bulk toolbar)",
    "annotations:dataset-options": "an htmx fragment of the bulk toolbar",
    "annotations:dataset-add": "POST only (from the bulk toolbar)",
    "annotations:dataset-delete": "POST only",
    "annotations:dataset-edit": "POST only (the form is on the dataset's page)",
    "annotations:dataset-download": "a file download",
    "tasks:form-count": "an htmx fragment of the task form",
    "tasks:form-variables": "an htmx fragment of the task form",
    "tasks:form-test": "POST only",
    "tasks:pause": "POST only",
    "tasks:resume": "POST only",
    "tasks:duplicate": "POST only",
    "tasks:delete": "POST only",
    "tasks:backfill": "POST only",
    "tasks:run-cancel": "POST only",
    "tasks:evaluate": "POST only (from the bulk toolbar)",
    "tasks:evaluate-options": "an htmx fragment of the bulk toolbar",
    "settings:api-key-revoke": "POST only",
    "detail:span_pane": "crawled as the trace page with ?span=",
    "monitors:preview": "an htmx fragment of the monitor form",
    "monitors:mute": "POST only",
    "monitors:delete": "POST only",
    "experiments:version-download": "a file download",
    "experiments:evaluate": "POST only",
    "experiments:phoenix-experiments": "a redirect (the link the Phoenix client prints)",
    "experiments:phoenix-compare": "a redirect (the link the Phoenix client prints)",
    "calibration:task-estimate": "an htmx fragment of the task form",
    "alignment:estimate": "an htmx fragment of the alignment workspace",
    "alignment:save": "POST only",
    "alignment:golden": "POST only",
    "alignment:resume": "POST only",
    "shadow:promote": "POST only",
    "shadow:discard": "POST only",
    "budgets:delete": "POST only",
}
VIEWPORTS = [(1280, 800), (1440, 900)]
# Tables of the trace browser whose columns do not fit their card (they would scroll inside it;
# the browser's tables are laid out to fit at 1280 px and wider).
CLIPPED_TABLES = """[...document.querySelectorAll('table.browser')]
  .filter(t => t.closest('.table-wrap') && t.scrollWidth > t.closest('.table-wrap').clientWidth + 1)
  .map(t => t.dataset.tab + ': ' + t.scrollWidth + ' > ' + t.closest('.table-wrap').clientWidth)"""
# The pages of the visual check, under these names in EVALHUB_SHOTS.
EXTRA_PAGES = {
    "trace-missing": "/projects/demo/traces/00000000000000000000000000000000/",
    "project-missing": "/projects/no-such-project/traces/",
    "page-missing": "/no/such/page/",
}


@dataclass(frozen=True)
class Data:
    values: dict[str, Any]


@pytest.fixture
def crawl_data(user, provider) -> Data:  # type: ignore[no-untyped-def]
    demo_seed(traces=40, project="demo", days=3)
    project = Project.objects.get(name="demo")
    trace = Trace.objects.filter(project=project).order_by("-start_time").first()
    span = Span.objects.filter(trace=trace).order_by("start_time").first()
    session = Session.objects.filter(project=project).first()
    config = annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    queue = queue_create(name="Review answers", item_kind="TRACE", configs=[config], user=user)
    trace_ids = list(Trace.objects.filter(project=project).values_list("trace_id", flat=True)[:5])
    queue_items_add(queue=queue, trace_ids=trace_ids, project=project)
    spans = list(Span.objects.filter(project=project).values_list("pk", flat=True)[:5])
    dataset = dataset_create(name="golden answers", spans=spans).dataset
    api_key_create(name="ci", scope="read", user=user)
    monitor = monitor_create(
        project=project,
        data=MonitorInput(
            name="incorrect answers",
            metric="eval_label_rate",
            result_name="Correctness",
            label="incorrect",
            condition="threshold",
            threshold=0.2,
        ),
    )
    channel = channel_create(
        data=ChannelInput(name="ops", kind="webhook", url="http://127.0.0.1:9/hook")
    )
    automation = automation_create(
        project=project,
        data=AutomationInput(
            name="tag errors", filter="status_code = 'ERROR'", action="tag", tag="err"
        ),
    )
    uploaded = dataset_upload(
        name="quiz",
        rows=[
            UploadRow(ExampleContent({"question": f"q{n}"}, {"answer": f"a{n}"})) for n in (1, 2)
        ],
    )
    experiment = experiment_create(dataset=uploaded.dataset, name="baseline")
    first = version_examples(version=uploaded.version)[0]
    run_record(experiment=experiment, run=RunInput(example_id=first.example_id, output="a1"))
    second = experiment_create(dataset=uploaded.dataset, name="candidate")
    run_record(experiment=second, run=RunInput(example_id=first.example_id, output="a2"))
    evaluator = Evaluator.objects.order_by("pk").first()
    version = evaluator.versions.order_by("-pk").first()
    alignment = AlignmentRun.objects.create(
        evaluator=evaluator, project=project, base_version=version, draft=version.config
    )
    budget_create(scope="global", period="month", unit="usd", limit=100.0)
    shadow = _shadow(Task.objects.order_by("pk").first(), span)
    dataset_task = dataset_task_save(
        dataset=dataset, name="scores experiments", evaluators=[evaluator]
    )
    return Data(
        {
            "project": project.name,
            "tab": "traces",
            "trace_id": trace.trace_id,
            "span_id": span.span_id,
            "session_id": session.session_id,
            "ident": evaluator.name,
            "provider_id": Provider.objects.get().pk,
            "config_id": AnnotationConfig.objects.get().pk,
            "queue_id": queue.pk,
            "item_id": LabelingQueueItem.objects.filter(queue=queue).order_by("pk").first().pk,
            "pk": dataset.pk,
            "task_id": Task.objects.order_by("pk").first().pk,
            "dataset_task_id": dataset_task.pk,
            "run_id": TaskRun.objects.order_by("pk").first().pk,
            "key_id": ApiKey.objects.order_by("pk").first().pk,
            "user_id": user.pk,
            "monitor_id": monitor.pk,
            "channel_id": channel.pk,
            "automation_id": automation.pk,
            "experiment_id": experiment.pk,
            "alignment_id": alignment.pk,
            "shadow_id": shadow.pk,
            "compared": f"?ids={experiment.pk}&ids={second.pk}",
        }
    )


def _shadow(task, span):  # type: ignore[no-untyped-def]
    """A running shadow of the task's first evaluator with one result that differs."""
    evaluator = task.task_evaluators.order_by("pk").first().evaluator
    version = evaluator.versions.order_by("-number").first()
    shadow = ShadowVersion.objects.create(
        task=task, evaluator=evaluator, candidate=version.config, base_version=version
    )
    ShadowResult.objects.create(
        shadow=shadow,
        target_kind="SPAN",
        target_key=span.span_id,
        target_pk=span.pk,
        trace_id=span.trace.trace_id,
        span_id=span.span_id,
        when=span.start_time,
        label="a shadow's label",
        explanation="the candidate's explanation",
    )
    return shadow


def _pages(data: Data) -> dict[str, str]:
    """name → URL of every page route, arguments filled from ``data``."""
    found: dict[str, str] = {}
    for route in routes():
        if route.is_api and route.name != "api:openapi-view":
            continue
        if route.name.startswith("admin:") or route.name in NOT_PAGES:
            continue
        arguments = re.findall(r"<(?:\w+:)?(\w+)>", route.route)
        missing = [name for name in arguments if name not in data.values]
        assert not missing, f"{route.name}: no value for {missing}; add one or list it in NOT_PAGES"
        found[route.name] = reverse(route.name, kwargs={a: data.values[a] for a in arguments})
    found["experiments:compare"] += data.values["compared"]
    found["detail:trace?span"] = (
        reverse(
            "detail:trace",
            kwargs={"project": data.values["project"], "trace_id": data.values["trace_id"]},
        )
        + f"?span={data.values['span_id']}"
    )
    return found


def _shot(page, name: str, width: int) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("EVALHUB_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        page.screenshot(path=str(Path(folder) / f"{slug}-{width}.png"), full_page=True)


class Crawler:
    """One browser page at one viewport width, noting each problem found on the way."""

    def __init__(self, page, base_url: str, width: int) -> None:  # type: ignore[no-untyped-def]
        self.page, self.base_url, self.width = page, base_url, width
        self.problems: list[str] = []
        self.errors: list[str] = []
        self.expected_failure = ""  # the URL of a page that answers an error on purpose
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        if message.type != "error":
            return
        own_status = message.location.get("url") == self.expected_failure
        if own_status and message.text.startswith("Failed to load resource"):
            return  # Chromium logs the status of a page that answers 404
        self.errors.append(message.text)

    def note(self, name: str, url: str, problem: str) -> None:
        self.problems.append(f"{self.width}px {name} {url}: {problem}")

    def check(self, name: str, url: str) -> None:
        wide, inner = self.page.evaluate(
            "[document.scrollingElement.scrollWidth, window.innerWidth]"
        )
        if wide > inner:
            self.note(name, url, f"the page is {wide}px wide")
        clipped = self.page.evaluate(CLIPPED_TABLES)
        if clipped:
            self.note(name, url, f"tables wider than their card {clipped}")
        if self.errors:
            self.note(name, url, f"console {self.errors}")
        _shot(self.page, name, self.width)

    def visit(self, name: str, url: str, expect_status: int = 200) -> None:
        from playwright.sync_api import Error as PlaywrightError

        self.errors.clear()
        self.expected_failure = "" if expect_status == 200 else self.base_url + url
        try:
            response = self.page.goto(url)
        except PlaywrightError as error:
            self.note(name, url, error.message.splitlines()[0])
            return
        self.page.wait_for_load_state("networkidle")
        status = response.status if response else None
        if status != expect_status:
            self.note(name, url, f"HTTP {status}")
        self.check(name, url)


def _crawl(crawler: Crawler, pages: dict[str, str], username: str) -> None:
    from tests.browser.fixtures import PASSWORD

    page, width = crawler.page, crawler.width
    icon = page.request.get("/favicon.ico")
    assert icon.ok and icon.headers["content-type"] == "image/svg+xml"
    crawler.visit("login", "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    for name, url in pages.items():
        crawler.visit(name, url)
    for name, url in EXTRA_PAGES.items():
        crawler.visit(name, url, expect_status=404)

    # What appears on a click: the playground's span picker and a provider's test result.
    crawler.visit("evaluators:detail", pages["evaluators:detail"])
    page.locator("#picker-project").select_option("demo")
    expect(page.locator("#span-choices .use-span").first).to_be_visible()
    uses_fit = page.locator("#span-choices .use-span").evaluate_all(
        """buttons => buttons.every(b => b.getBoundingClientRect().right
            <= b.closest('section.card').getBoundingClientRect().right)"""
    )
    assert uses_fit, f"{width}px: the span picker's Use buttons are cut off"
    crawler.check("playground-span-picker", pages["evaluators:detail"])
    crawler.visit("evaluators:providers", pages["evaluators:providers"])
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".provider-test-result .badge")).to_be_visible()
    crawler.check("provider-test-result", pages["evaluators:providers"])

    # The bulk toolbar: two menus on one line; the first opens from the keyboard.
    crawler.visit("tracing:traces", pages["tracing:traces"])
    bar = page.locator(".bulk-bar")
    assert bar.evaluate("bar => bar.scrollHeight <= 40"), f"{width}px: the bulk bar wraps"
    page.locator("summary", has_text="Selected").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Add to queue")).to_be_visible()
    crawler.check("bulk-selected-menu", pages["tracing:traces"])
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Add to queue")).to_be_hidden()


def test_every_page_fits_and_logs_no_console_error(browser, live_server, crawl_data, user):  # type: ignore[no-untyped-def]
    pages = _pages(crawl_data)
    assert {"tracing:traces", "detail:trace", "annotations:queue-item", "tasks:run"} <= set(pages)
    problems: list[str] = []
    for width, height in VIEWPORTS:
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            timezone_id="Europe/Paris",
        )
        context.set_default_timeout(15_000)
        crawler = Crawler(context.new_page(), live_server.url, width)
        try:
            _crawl(crawler, pages, user.username)
        finally:
            context.close()
        problems += crawler.problems
    assert not problems, "\n".join(problems)
