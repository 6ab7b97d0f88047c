"""Issue 11, point 3: every route, method and kind of caller answers as ``evalhub.identity.policy`` says.

The routes are not listed here: they are read from the URL configuration (Django's resolver and
the ninja API's operations), so a route added without a decision in the policy fails
``test_every_route_is_classified`` — and is refused to everyone but admins until it has one.
Each request goes to a real object of the right kind (the ``world`` below), so an allowed call
reaches its handler (no 404 stands in for a missing check) and a refused one is refused before
it; each runs in a savepoint rolled back after it, so a DELETE that is allowed does not hide
the next caller's outcome.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from annotations.datasets.services import dataset_create
from annotations.models import Annotation
from annotations.queues.models import LabelingQueueItem, LabelingQueueReview
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create, project_annotation_config_enable
from evalhub.evaluators.services import evaluator_create
from evalhub.identity.access import Need, Principal
from evalhub.identity.models import ApiKey
from evalhub.identity.policy import Route, api_need, api_operation, page_rule, routes, unclassified
from evalhub.identity.roles import annotator_role_grant
from evalhub.identity.services import api_key_create
from evalhub.providers.services import provider_create
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.models import TaskRun
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
from tests import factories

pytestmark = pytest.mark.django_db

CALLERS = (
    "anonymous",
    "annotator session",
    "member session",
    "admin session",
    "ingest key",
    "read key",
    "write key",
    "admin key",
    "revoked key",
    "expired key",
)
ROUTES = routes()
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"
JUDGE = {
    "kind": "LLM",
    "template": "Question: {input}\nAnswer: {output}\nIs it correct?",
    "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    "output_mode": "tool",
}


@dataclass
class World:
    """One object of each kind, the people and keys that call, and the URL parameters."""

    params: dict[str, str]
    clients: dict[str, Client]
    principals: dict[str, Principal | None]  # None: a key that cannot be used (401)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """Built once for the module inside a transaction that is rolled back at its end; each
    test's own transaction (and each request's savepoint) nests in it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _world_build()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _world_build() -> World:
    django_user_model = get_user_model()
    admin = django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)
    member = django_user_model.objects.create_user("mia")
    annotator = django_user_model.objects.create_user("ann")
    annotator_role_grant(user=annotator)

    spans = factories.trace(session_id="conv-1")
    root = spans[0]
    project = root.project
    config = annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    project_annotation_config_enable(project=project, config=config)
    Annotation.objects.create(
        project=project,
        target_kind="SPAN",
        span=root,
        name="correctness",
        label="correct",
        annotator_kind="HUMAN",
        source="API",
        identifier="",
    )
    # A machine result, for the legacy evaluations read (GET /v1/evaluations).
    Annotation.objects.create(
        project=project,
        target_kind="SPAN",
        span=root,
        name="judge",
        label="correct",
        annotator_kind="LLM",
        source="API",
        identifier="",
    )
    queue = queue_create(
        name="review", item_kind="TRACE", configs=[config], assignees=[annotator, member, admin]
    )
    queue_items_add(queue=queue, trace_ids=[root.trace.trace_id])
    item = LabelingQueueItem.objects.get(queue=queue)
    LabelingQueueReview.objects.create(item=item, user=member, state="SKIPPED")
    dataset = dataset_create(name="golden", spans=[root.pk]).dataset
    experiment, prompt_version = _experiment_world(dataset)
    provider = provider_create(
        name="nowhere",
        kind="compatible",
        base_url=CLOSED_PORT_URL,  # judge calls fail at once (the routes answer with the error)
        api_key="sk-test",
        default_model="judge-small",
        requests_per_minute=0,
        timeout_seconds=5,
        is_default=True,
    )
    judge = evaluator_create(name="judge", config=JUDGE)
    evaluator_create(
        name="custom",
        config={
            "kind": "CODE",
            "check": "custom",
            "code": "def evaluate(input, output, metadata, reference, span):\n    return 1\n",
        },
        user=admin,
    )
    task = task_create(
        data=TaskInput(
            name="quality", project=project, evaluators=[TaskEvaluatorInput(evaluator=judge)]
        )
    )
    run = run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1))
    assert TaskRun.objects.filter(pk=run.pk).exists()
    from evalhub.experiments.task_target import dataset_task_save

    dataset_task = dataset_task_save(dataset=dataset, name="scores experiments", evaluators=[judge])
    from evalhub.alignment.models import AlignmentRun

    alignment = AlignmentRun.objects.create(
        evaluator=judge, project=project, base_version=judge.versions.get(), draft=JUDGE
    )
    from evalhub.shadow.models import ShadowVersion

    shadow = ShadowVersion.objects.create(
        task=task, evaluator=judge, base_version=judge.versions.get(), candidate=JUDGE
    )
    from evalhub.budgets.services import budget_create

    budget = budget_create(scope="global", period="month", unit="usd", limit=1e9)

    # monitors, notification channels, automations (evalhub.monitors)
    from evalhub.monitors.automations import AutomationInput, automation_create
    from evalhub.monitors.channels import ChannelInput, channel_create
    from evalhub.monitors.services import MonitorInput, monitor_create

    channel = channel_create(data=ChannelInput(name="ops", kind="webhook", url=CLOSED_PORT_URL))
    monitor = monitor_create(
        project=project,
        data=MonitorInput(name="errors", metric="error_rate", condition="threshold", threshold=0.5),
    )
    automation = automation_create(
        project=project,
        data=AutomationInput(name="tag", filter="status_code = 'ERROR'", action="tag", tag="err"),
    )

    # a project's retention limit and a retention pass (evalhub.retention; admin pages only)
    from evalhub.retention.services import retention_apply, retention_policy_set

    retention_policy_set(project=project, days=36500)
    retention_apply(project=project, days=36500)

    def key(name: str, scope: str, user: Any = admin) -> str:
        return api_key_create(name=name, scope=scope, user=user)[1]

    raw = {
        "ingest key": key("ingest", "ingest", user=None),
        "read key": key("read", "read"),
        "write key": key("write", "write"),
        "admin key": key("admin", "admin", user=None),
        "revoked key": key("revoked", "admin"),
        "expired key": key("expired", "admin"),
    }
    ApiKey.objects.filter(name="revoked").update(revoked_at=timezone.now())
    ApiKey.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(seconds=1))
    members_key = api_key_create(name="mia's", scope="read", user=member)[0]

    clients: dict[str, Client] = {"anonymous": Client()}
    principals: dict[str, Principal | None] = {"anonymous": Principal()}
    for caller, user in (
        ("annotator session", annotator),
        ("member session", member),
        ("admin session", admin),
    ):
        clients[caller] = Client()
        clients[caller].force_login(user)
        principals[caller] = Principal(user=user)
    for caller, secret in raw.items():
        clients[caller] = Client(headers={"Authorization": f"Bearer {secret}"})
        found = ApiKey.objects.select_related("user").get(name=caller.split()[0])
        principals[caller] = (
            None
            if caller in ("revoked key", "expired key")
            else Principal(user=found.user, key=found)
        )

    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    params = {
        # pages
        "project": project.name,
        "tab": "traces",
        "trace_id": root.trace.trace_id,
        "span_id": root.span_id,
        "session_id": "conv-1",
        "provider_id": str(provider.pk),
        "config_id": str(config.pk),
        "target": "span",
        "target_id": root.span_id,
        "queue_id": str(queue.pk),
        "item_id": str(item.pk),
        "pk": str(dataset.pk),
        "task_id": str(task.pk),
        "dataset_task_id": str(dataset_task.pk),
        "run_id": str(run.pk),
        "monitor_id": str(monitor.pk),
        "channel_id": str(channel.pk),
        "automation_id": str(automation.pk),
        "alignment_id": str(alignment.pk),
        "shadow_id": str(shadow.pk),
        "budget_id": str(budget.pk),
        "ident": judge.name,
        "key_id": str(members_key.pk),
        "user_id": str(member.pk),
        "uidb64": urlsafe_base64_encode(force_bytes(member.pk)),
        "token": default_token_generator.make_token(member),
        # the REST API
        "span_identifier": root.span_id,
        "session_identifier": "conv-1",
        "config": config.name,
        "queue": str(queue.pk),
        "dataset": dataset.name,
        "experiment_id": str(experiment.pk),
        "version_id": str(experiment.dataset_version_id),
        "prompt": prompt_version.prompt.name,
        "tag": "production",
        "prompt_version_id": str(prompt_version.pk),
        "global_id": base64.b64encode(f"Dataset:{dataset.pk}".encode()).decode(),
        # Django's admin
        "app_label": "tracing",
        "url": "nothing-here",
    }
    return World(params=params, clients=clients, principals=principals)


def _experiment_world(dataset: Any) -> tuple[Any, Any]:
    """An experiment on the dataset with a run and an evaluation, and a tagged prompt."""
    from annotations.datasets.versions import dataset_version_latest, version_examples
    from evalhub.experiments.prompts import prompt_tag_set, prompt_version_create
    from evalhub.experiments.services import (
        RunInput,
        evaluation_upsert,
        experiment_create,
        run_record,
    )

    experiment = experiment_create(dataset=dataset, name="baseline")
    example = version_examples(version=dataset_version_latest(dataset=dataset)).first()
    run = run_record(experiment=experiment, run=RunInput(example_id=example.example_id, output="x"))
    evaluation_upsert(run=run, name="exact", result={"score": 1.0})
    version = prompt_version_create(
        name="answerer",
        version={
            "model_name": "m",
            "template_type": "STR",
            "template": {"type": "string", "template": "{{q}}"},
        },
    )
    prompt_tag_set(version=version, name="production")
    return experiment, version


def test_every_route_is_classified():
    """Adding a route means deciding in evalhub/identity/policy.py who may use it."""
    assert [route.name for route in unclassified()] == []


def test_the_system_check_names_an_unclassified_route(monkeypatch):
    from evalhub.identity.policy import API

    monkeypatch.delitem(API, "api:projects_delete")
    with pytest.raises(SystemCheckError) as failed:
        call_command("check")
    assert "evalhub.E001" in str(failed.value)
    assert "'api:projects_delete' (v1/projects/<name:project>) is not in the access policy" in str(
        failed.value
    )


# --- building a request ---------------------------------------------------------------------------

_ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_REGEX_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _admin_object(name: str) -> dict[str, str]:
    """URL parameters naming a real object for an admin URL (``admin:<app>_<model>_<view>``)."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    from tracing.models import Project

    match = re.match(r"admin:([a-z]+)_([a-z]+)_(change|delete|history|password_change)$", name)
    if match is not None:
        model = apps.get_model(match.group(1), match.group(2))
        first = model._default_manager.order_by("pk").first()
        assert first is not None, f"the world has no {model.__name__}"
        return {"object_id": str(first.pk), "id": str(first.pk)}
    project = Project.objects.order_by("pk").first()
    assert project is not None
    content_type = ContentType.objects.get_for_model(Project)
    return {"object_id": str(project.pk), "content_type_id": str(content_type.pk)}


def _path(route: Route, params: dict[str, str]) -> str:
    values = dict(params)
    if route.name.startswith("admin:"):
        values |= _admin_object(route.name)
    text = _ROUTE_PARAM.sub(lambda m: values[m.group(1)], route.route)
    text = _REGEX_PARAM.sub(lambda m: values[m.group(1)], text)
    return "/" + text.replace("^", "").replace("$", "")


def _resolved_name(path: str, method: str) -> str:
    match = resolve(path)
    operation = api_operation(match, method)
    return operation[0] if operation is not None else match.view_name


def _need(route: Route, method: str) -> Need:
    if route.is_api:
        need = api_need(route.name)
    else:
        rule = page_rule(route.name)
        need = rule.need(method) if rule is not None else None
    assert need is not None, f"{route.name} is not classified"
    return need


def _expected(route: Route, method: str, caller: str, world: World) -> str:
    """``allowed``, ``login`` (pages: to the login page), ``401`` or ``403``."""
    need = _need(route, method)
    if need == Need.PUBLIC:
        return "allowed"
    if not route.is_api:  # pages know sessions only: a key is nobody there
        principal = world.principals[caller] if caller.endswith("session") else Principal()
        if principal is None or principal.is_anonymous:
            return "login"
        return "allowed" if principal.can(need) else "403"
    principal = world.principals[caller]
    if principal is None or principal.is_anonymous:
        return "401"
    return "allowed" if principal.can(need) else "403"


def _outcome(response: Any) -> str:
    status = response.status_code
    if status in (401, 403):
        return str(status)
    location = response.get("Location", "") if status == 302 else ""
    if location.startswith(("/login/?next=", "/admin/login/?next=")):
        return "login"  # the policy's (or Django admin's) way to ask for a login
    return "allowed"


def _send(client: Client, method: str, path: str, is_api: bool) -> Any:
    if method == "GET":
        return client.get(path)
    if is_api:
        return client.generic(method, path, "{}", content_type="application/json")
    return client.post(path, {})


# --- the matrix -------------------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for route in ROUTES:
        methods = route.methods if route.is_api else ("GET", "POST")
        for method in methods:
            cases.append(pytest.param(route, method, id=f"{method} {route.name}"))
    return cases


# Allowed calls that end in 404 although every object exists: the handler's own answer.
HANDLER_404 = {
    "admin:django.contrib.admin.sites.catch_all_view",  # Django's admin: an unknown admin URL
    "admin:view_on_site",  # "view on site" of a model with no page of its own
}
# Allowed calls the handler itself refuses: Django's admin autocomplete needs a model with
# autocomplete fields, and EvalHub has none.
# A retention pass is a record the sweep writes: its admin page has no "add".
HANDLER_403 = {"admin:autocomplete", "admin:retention_retentionsweep_add"}


@pytest.mark.parametrize(("route", "method"), _cases())
def test_route_answers_each_caller_as_the_policy_says(
    route: Route, method: str, world: World, settings
):
    settings.EVALHUB_LLM_MAX_ATTEMPTS = 1
    path = _path(route, world.params)
    if _resolved_name(path, method) != route.name:
        # Shadowed by an earlier route (ninja's root pattern under the home page): that route
        # is in the matrix itself; it only has to be classified.
        shadow = _resolved_name(path, method)
        assert page_rule(shadow) is not None or api_need(shadow) is not None
        return
    wrong = []
    for caller in CALLERS:
        expected = _expected(route, method, caller, world)
        client = world.clients[caller]
        cookies = copy.deepcopy(client.cookies)  # a logout must not end the session for later
        with transaction.atomic():
            response = _send(client, method, path, route.is_api)
            transaction.set_rollback(True)
        client.cookies = cookies
        got = _outcome(response)
        if expected == "allowed" and route.name in HANDLER_403 and got == "403":
            got = "allowed"
        if got != expected:
            wrong.append(
                f"{caller}: expected {expected}, got {response.status_code}"
                f" {response.get('Location', '')}"
            )
        elif got == "allowed":
            assert response.status_code < 500, (caller, response.status_code)
            if response.status_code == 404 and route.name not in HANDLER_404:
                wrong.append(f"{caller}: allowed but 404 — the handler did not find the object")
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)


def test_a_key_is_never_more_than_its_user():
    """A key's power is what both its scope and its user's role grant."""
    user_model = get_user_model()
    member = user_model.objects.create_user("m")
    admin_role_key = ApiKey(name="x", scope="admin", user=member)
    assert not Principal(user=member, key=admin_role_key).can(Need.ADMIN)
    assert Principal(user=member, key=admin_role_key).can(Need.WRITE)
    boss = user_model.objects.create_user("b", is_staff=True)
    read_key = ApiKey(name="y", scope="read", user=boss)
    assert Principal(user=boss, key=read_key).can(Need.READ)
    assert not Principal(user=boss, key=read_key).can(Need.WRITE)
    assert not Principal(key=ApiKey(name="z", scope="write")).can(Need.ADMIN)
    member.is_active = False
    assert not Principal(user=member, key=ApiKey(name="w", scope="write")).can(Need.READ)


def test_what_the_audit_found_is_refused(client, django_user_model):
    """A member's session or key deleted any project and a custom code evaluator; a key with
    no user acted as an admin."""
    from evalhub.evaluators.models import Evaluator
    from tracing.models import Project, Span

    admin = django_user_model.objects.create_user("chief", is_staff=True)
    member = django_user_model.objects.create_user("moe")
    factories.trace(project="team")
    evaluator_create(
        name="custom-check",
        config={
            "kind": "CODE",
            "check": "custom",
            "code": "def evaluate(input, output, metadata, reference, span):\n    return 1\n",
        },
        user=admin,
    )
    members_key = api_key_create(name="moe's", scope="write", user=member)[1]
    serviceless = api_key_create(name="ci", scope="write")[1]

    client.force_login(member)
    for headers in ({}, {"Authorization": f"Bearer {members_key}"}):
        assert client.delete("/v1/projects/team", headers=headers).status_code == 403
        assert client.delete("/v1/evaluators/custom-check", headers=headers).status_code == 403
    client.logout()
    refused = client.post(
        "/v1/providers",
        {"name": "p", "kind": "openai", "default_model": "m"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {serviceless}"},
    )
    assert refused.status_code == 403
    assert "admin scope" in refused.json()["detail"]
    assert Span.objects.filter(project__name="team").count() == 3
    assert Evaluator.objects.filter(name="custom-check").exists()

    client.force_login(admin)
    assert client.delete("/v1/evaluators/custom-check").status_code == 204
    assert client.delete("/v1/projects/team").status_code == 204
    assert not Project.objects.filter(name="team").exists()
