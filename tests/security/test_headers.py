"""Issue 11, point 9: security headers, a Content-Security-Policy the pages pass (Chromium
crawls them and reports no violation), the API docs from local files for signed-in people only,
TLS settings, and login attempts limited per account and per address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client

from annotations.datasets.services import dataset_create
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create, project_annotation_config_enable
from evalhub.evaluators.services import evaluator_create
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
from tests import factories
from tests.browser.fixtures import PASSWORD


@pytest.fixture
def signed_in(db, django_user_model) -> Client:
    client = Client()
    client.force_login(
        django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)
    )
    return client


def test_pages_carry_the_security_headers(signed_in):
    response = signed_in.get("/projects/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"]
    assert "microphone=()" in response["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response  # only with EVALHUB_TLS


def test_templates_have_no_inline_script_style_or_handler():
    """What the policy forbids, checked at the source: every script and style is a file."""
    import re
    from pathlib import Path

    from django.conf import settings

    found = []
    for path in (Path(settings.BASE_DIR) / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+=", r"\sstyle=", r"<style"):
            for match in re.finditer(pattern, text):
                found.append(f"{path.name}: {match.group(0)}")
    assert found == []


def test_tls_settings_follow_evalhub_tls():
    """Secure cookies, HSTS and the proxy's scheme header with EVALHUB_TLS=true (a fresh
    interpreter reads the settings from the environment)."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
        "settings.SECURE_HSTS_SECONDS, list(getattr(settings, 'SECURE_PROXY_SSL_HEADER', []) "
        "or [])]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evalhub.settings"}

    def read(**extra: str) -> list:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    env.pop("EVALHUB_TLS", None)
    assert read() == [False, False, 0, []]
    assert read(EVALHUB_TLS="true") == [
        True,
        True,
        31_536_000,
        ["HTTP_X_FORWARDED_PROTO", "https"],
    ]
    assert read(EVALHUB_TLS="true", EVALHUB_PROXY_SSL_HEADER="none", SECURE_HSTS_SECONDS="60") == [
        True,
        True,
        60,
        [],
    ]


def test_hsts_is_sent_over_https_with_tls_settings(signed_in, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = signed_in.get("/projects/", headers={"X-Forwarded-Proto": "https"})
    assert response["Strict-Transport-Security"] == "max-age=3600"


# --- the API docs ------------------------------------------------------------------------------


def test_docs_and_schema_need_a_login(db):
    client = Client()
    docs = client.get("/docs")
    assert docs.status_code == 302 and docs["Location"].startswith("/login/?next=/docs")
    assert client.get("/openapi.json").status_code == 401


def test_docs_come_from_local_static_files(signed_in):
    html = signed_in.get("/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert signed_in.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


# --- login attempts ---------------------------------------------------------------------------


def _log_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_failed_logins_lock_the_account_for_a_while(db, django_user_model, settings):
    django_user_model.objects.create_user("mia", password=PASSWORD)
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        response = _log_in(client, "mia", "wrong", address=f"10.0.1.{attempt}")
        assert response.status_code in (200, 429)
    locked = _log_in(client, "mia", PASSWORD, address="10.9.9.9")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins for this account or from this address" in html
    assert "try again in 15 minutes" in html
    assert locked["Retry-After"] == "900"
    # Another account from another address still logs in.
    django_user_model.objects.create_user("ann", password=PASSWORD)
    assert _log_in(Client(), "ann", PASSWORD, address="10.8.8.8").status_code == 302


def test_failed_logins_from_one_address_lock_that_address(db, django_user_model, settings):
    django_user_model.objects.create_user("mia", password=PASSWORD)
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, f"guess{attempt}", "wrong", address="10.0.0.66")
    assert _log_in(client, "mia", PASSWORD, address="10.0.0.66").status_code == 429
    assert _log_in(Client(), "mia", PASSWORD, address="10.0.0.67").status_code == 302


def test_the_lock_ends_after_the_cool_off(db, django_user_model, settings):
    from axes.models import AccessAttempt
    from django.utils import timezone

    django_user_model.objects.create_user("mia", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(Client(), "mia", "wrong")
    assert _log_in(Client(), "mia", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _log_in(Client(), "mia", PASSWORD).status_code == 302


def test_behind_a_proxy_the_forwarded_address_counts(db, django_user_model, settings):
    from evalhub.identity.auth import client_ip

    settings.EVALHUB_TRUSTED_PROXIES = 1
    from django.test import RequestFactory

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )
    assert client_ip(request) == "203.0.113.9"  # what our proxy saw, not what the client said
    settings.EVALHUB_TRUSTED_PROXIES = 0
    assert client_ip(request) == "10.0.0.1"


# --- every page in Chromium, with the policy enforced ---------------------------------------------

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def crawl_world(user):
    """Something on every main page: a project with traces and a session, an evaluator, a
    task with a run, a queue with an item, a dataset, an annotation config."""
    spans = factories.trace(session_id="conv-1")
    factories.trace()
    root = spans[0]
    config = annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    project_annotation_config_enable(project=root.project, config=config)
    queue = queue_create(name="review", item_kind="TRACE", configs=[config], assignees=[user])
    queue_items_add(queue=queue, trace_ids=[root.trace.trace_id])
    dataset = dataset_create(name="golden", spans=[root.pk]).dataset
    judge = evaluator_create(
        name="judge",
        config={"kind": "CODE", "check": "contains_keywords", "params": {"keywords": ["refund"]}},
    )
    task = task_create(
        data=TaskInput(
            name="quality",
            project=root.project,
            evaluators=[TaskEvaluatorInput(evaluator=judge)],
        )
    )
    run = run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1))
    item = LabelingQueueItem.objects.get(queue=queue)
    p, t = root.project.name, root.trace.trace_id
    return [
        "/",
        "/projects/",
        f"/projects/{p}/",
        f"/projects/{p}/traces/",
        f"/projects/{p}/spans/",
        f"/projects/{p}/sessions/",
        f"/projects/{p}/traces/{t}/",
        f"/projects/{p}/sessions/conv-1/",
        f"/projects/{p}/annotations/",
        f"/projects/{p}/trends/",
        "/evaluators/",
        "/evaluators/new/",
        "/evaluators/templates/",
        f"/evaluators/{judge.name}/",
        f"/evaluators/{judge.name}/edit/",
        "/tasks/",
        "/tasks/new/",
        f"/tasks/{task.pk}/",
        f"/runs/{run.pk}/",
        "/queues/",
        "/queues/new/",
        f"/queues/{queue.pk}/",
        f"/queues/{queue.pk}/label/{item.pk}/",
        "/datasets/",
        f"/datasets/{dataset.pk}/",
        "/settings/providers/",
        "/settings/annotation-configs/",
        "/settings/annotation-configs/new/",
        "/settings/api-keys/",
        "/settings/users/",
        f"/settings/users/{user.pk}/",
        "/docs",
    ]


def test_no_page_breaks_the_content_security_policy(logged_in_page, crawl_world):
    page = logged_in_page
    page.context.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    seen = {}
    for path in crawl_world:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__cspViolations")
    violations = {path: found for path, found in seen.items() if found}
    assert violations == {}
    assert console == []
    # The policy was there to break: pages were served with it.
    assert "script-src 'self'" in (page.goto("/projects/").headers["content-security-policy"])


def test_the_docs_render_offline_under_the_policy(logged_in_page, live_server):
    page = logged_in_page
    page.context.add_init_script(RECORD_VIOLATIONS)
    external = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((live_server.url, "data:")) else external.append(r.url),
    )
    page.goto("/docs")
    page.get_by_text("/v1/projects").first.wait_for()
    assert page.evaluate("window.__cspViolations") == []
    assert external == []
