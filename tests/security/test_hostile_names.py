"""Any string in any name or id: projects, sessions, spans, traces, users, queues, datasets and
tasks named with slashes, dots, percent signs, spaces, unicode, right-to-left marks, emoji,
control characters, markup and maximal lengths. Every page reachable from the navigation (and
every link on those pages) answers without a 5xx and shows the names escaped; the API routes
that take names answer too.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from annotations.datasets.services import dataset_create
from annotations.models import AnnotatorKind
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.core.converters import name_from_url, name_to_url
from evalhub.tasks.engine import run_work
from evalhub.tasks.runs import run_manual_create
from tests import factories
from tests.evalhub.tasks.factories import code_check, make_task
from tracing.models import Project, Span

pytestmark = pytest.mark.django_db

MARKUP = '<b class="pwned">x</b>'
PROJECTS = [
    "team/app",
    "..",
    ".",
    "a%2Fb c?d#e&f=g",
    "ünïcödé 名前 \u202egnp.exe",
    "emoji 🚀🔥 \u05e9\u05dc\u05d5\u05dd",
    "ctrl\x01\x07\tx",
    "tilde~s~~d~",
    f"markup {MARKUP}",
    "back\\slash",
    "p" * 199 + "/",  # the longest project name, with a slash
]
SESSIONS = [
    "user/42",
    "../../etc/passwd",
    "%2F%2e%2e",
    "s p a c e ?x=1#y",
    "\u202eRTL and emoji 🚀",
    "ctrl\x02\x1f",
    f"markup {MARKUP}",
    "~d",
    "s" * 254 + "/",  # the longest session id, with a slash
]
TRACE_IDS = ["trace/1", "..", "t r a c e %2F", "trace-ü-🚀", f"t{MARKUP}"]
SPAN_NAME_LONG = ("name/ü " * 200)[:1000]
USER_IDS = ["user/1", f"u {MARKUP}", "ユーザー ../"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and ((name == "href" and tag == "a") or name == "hx-get"):
                self.links.append(value)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _crawl(client: Client, start: list[str], *, limit: int = 2500) -> dict[str, int]:
    """Every same-site GET link reachable from ``start``: URL → status. A path is visited
    with at most a few different query strings (sort and page links vary endlessly)."""
    seen: dict[str, int] = {}
    per_path: dict[str, int] = {}
    queue = deque(start)
    while queue and len(seen) < limit:
        url = queue.popleft()
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if parts.path.startswith(("/admin/", "/static/", "/logout/", "/docs")):
            continue
        url = parts.path + (f"?{parts.query}" if parts.query else "")
        if url in seen:
            continue
        per_path[parts.path] = per_path.get(parts.path, 0) + 1
        if per_path[parts.path] > 4 and parts.query:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        if response.status_code in (301, 302, 303, 307, 308):
            queue.append(response["Location"])
            continue
        if response.streaming:
            b"".join(response.streaming_content)
            continue
        if "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        assert MARKUP not in html, f"{url} shows a name unescaped"
        queue.extend(_links(html))
    return seen


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_user(
        username=f"ann/{MARKUP}é", password="x", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return user


@pytest.fixture
def hostile(admin):
    """Hostile names everywhere, with annotations, a queue, a dataset and a task run on them."""
    when = factories.BASE_TIME
    traces: list[list[Span]] = []
    for index, project in enumerate(PROJECTS):
        session = SESSIONS[index % len(SESSIONS)]
        traces.append(
            factories.trace(
                project=project, session_id=session, start=when + timedelta(minutes=index)
            )
        )
    for index, session in enumerate(SESSIONS):
        traces.append(
            factories.trace(
                project=PROJECTS[0], session_id=session, start=when - timedelta(minutes=index)
            )
        )
    odd = []
    for index, trace_id in enumerate(TRACE_IDS):
        root = factories.span_record(
            trace_id=trace_id,
            span_id=["span/1", "..", "~", "s p a n", f"{MARKUP}"[:32]][index],
            name=SPAN_NAME_LONG if index == 0 else f"span {MARKUP} /{index}",
            kind="LLM",
            start=when + timedelta(seconds=index),
            session_id=SESSIONS[index],
            attributes={"user.id": USER_IDS[index % len(USER_IDS)], "tag.tags": [f"tag/{MARKUP}"]},
        )
        odd.extend(factories.ingest([root], project=PROJECTS[0]))
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=span.span_id,
                name=f"Q&A/{MARKUP}",
                annotator_kind=AnnotatorKind.LLM,
                label=f"label/{MARKUP}",
                score=0.5,
                explanation=f"because {MARKUP}",
            )
            for span in odd
        ]
        + [
            AnnotationInput(
                target_kind="SESSION",
                target_id=session,
                name="session note",
                label=f"ok {MARKUP}",
            )
            for session in SESSIONS
        ],
        project=Project.objects.get(name=PROJECTS[0]),
    )
    config = annotation_config_create(
        name=f"rubric/{MARKUP}",
        kind="CATEGORICAL",
        values=[{"label": f"good/{MARKUP}", "score": 1}, {"label": "bad", "score": 0}],
    )
    sessions_queue = queue_create(
        name=f"sessions/{MARKUP}", item_kind="SESSION", configs=[config], assignees=[admin]
    )
    queue_items_add(
        queue=sessions_queue,
        session_ids=SESSIONS,
        project=Project.objects.get(name=PROJECTS[0]),
    )
    traces_queue = queue_create(
        name=f"traces/{MARKUP}", item_kind="TRACE", configs=[config], assignees=[admin]
    )
    queue_items_add(queue=traces_queue, trace_ids=TRACE_IDS)
    dataset_create(name=f"data/{MARKUP}", spans=[s.pk for s in odd])
    task = make_task(code_check(), project=PROJECTS[0], name=f"task/{MARKUP}")
    for granularity, keys in (
        ("span", [s.span_id for s in odd]),
        ("trace", TRACE_IDS),
        ("session", SESSIONS),
    ):
        run = run_manual_create(project=task.project, granularity=granularity, keys=keys, task=task)
        assert run_work(run_id=run.pk, slice_seconds=30) == "finished"
    return {"traces": traces, "odd": odd}


def test_the_converter_round_trips_any_string():
    for value in [*PROJECTS, *SESSIONS, *TRACE_IDS, "~", "~~", "a~sb", "...", ". .", "%2F"]:
        segment = name_to_url(value)
        assert "/" not in segment
        assert segment not in (".", "..")
        assert name_from_url(segment) == value
    with pytest.raises(ValueError):
        name_from_url("broken~x")


def test_every_page_answers_and_escapes_hostile_names(client, hostile):
    visited = _crawl(client, ["/"])
    assert len(visited) > 150
    must_reach = [reverse("tracing:traces", kwargs={"project": name}) for name in PROJECTS]
    must_reach += [
        reverse("detail:session", kwargs={"project": PROJECTS[0], "session_id": session})
        for session in SESSIONS
    ]
    must_reach += [
        reverse("detail:trace", kwargs={"project": PROJECTS[0], "trace_id": trace_id})
        for trace_id in TRACE_IDS
    ]
    paths = {urlsplit(url).path for url in visited}
    missing = [url for url in must_reach if url not in paths]
    assert not missing, f"not linked from any page: {missing}"
    for url in must_reach:
        assert visited.get(url, 200) == 200


def test_detail_pages_show_the_hostile_names(client, hostile):
    for trace_id in TRACE_IDS:
        url = reverse("detail:trace", kwargs={"project": PROJECTS[0], "trace_id": trace_id})
        response = client.get(url)
        assert response.status_code == 200
        assert trace_id.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in (
            response.content.decode()
        )
    span = hostile["odd"][0]
    pane = reverse(
        "detail:span_pane",
        kwargs={"project": PROJECTS[0], "trace_id": span.trace.trace_id, "span_id": span.span_id},
    )
    response = client.get(pane, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "name/ü" in response.content.decode()
    for session in SESSIONS:
        url = reverse("detail:session", kwargs={"project": PROJECTS[0], "session_id": session})
        assert client.get(url).status_code == 200


def test_exports_of_hostile_projects_have_safe_file_names(client, hostile):
    for name in PROJECTS:
        url = reverse("tracing:export", kwargs={"project": name, "tab": "spans"})
        response = client.get(url, {"format": "csv", "range": "all"})
        assert response.status_code == 200
        header = response["Content-Disposition"]
        assert header.startswith("attachment; filename")
        assert not any(ord(c) < 32 or ord(c) > 126 for c in header), header
        assert "/" not in header.split("filename", 1)[1].replace("utf-8''", "")
        b"".join(response.streaming_content)


def test_a_slash_in_a_project_sent_by_an_exporter_breaks_no_page(client, admin, auth):
    from tests.tracing.ingest.otlp_factories import otlp_json, pb_request, pb_span

    body = json.dumps(otlp_json(pb_request(pb_span(name="agent")))).encode()
    response = client.post(
        "/v1/traces",
        data=body,
        content_type="application/json",
        headers={**auth, "x-project-name": "team/app"},
    )
    assert response.status_code == 200
    assert Project.objects.filter(name="team/app").exists()
    for url in ("/", "/projects/", "/projects/team~sapp/", "/projects/team~sapp/traces/"):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
    assert "team/app" in client.get("/projects/").content.decode()


def test_a_project_name_longer_than_the_limit_is_refused_with_a_message(client, auth):
    from tests.tracing.ingest.otlp_factories import otlp_json, pb_request, pb_span

    body = json.dumps(otlp_json(pb_request(pb_span(name="agent")))).encode()
    response = client.post(
        "/v1/traces",
        data=body,
        content_type="application/json",
        headers={**auth, "x-project-name": "p" * 201},
    )
    assert response.status_code == 400
    assert "project name is longer than 200 characters" in response.content.decode()
    assert not Project.objects.filter(name__startswith="ppp").exists()


def test_api_routes_take_hostile_names(client, hostile, auth):
    for name in PROJECTS:
        segment = reverse("tracing:project", kwargs={"project": name}).split("/")[2]
        for route in (
            f"/v1/projects/{segment}",
            f"/v1/projects/{segment}/spans",
            f"/v1/projects/{segment}/traces",
            f"/v1/projects/{segment}/span_annotations?span_ids=x",
            f"/v1/projects/{segment}/annotation_configs",
        ):
            response = client.get(route, headers=auth)
            assert response.status_code < 500, (route, response.status_code)
            assert response.status_code != 404 or "annotation" in route, (route, response.content)
        body = client.get(f"/v1/projects/{segment}", headers=auth).json()
        assert body["data"]["name"] == name
    span = hostile["odd"][1]  # span id ".."
    query = urlencode({"span_ids": span.span_id})
    segment = reverse("tracing:project", kwargs={"project": PROJECTS[0]}).split("/")[2]
    found = client.get(f"/v1/projects/{segment}/span_annotations?{query}", headers=auth).json()
    assert {a["span_id"] for a in found["data"]} == {span.span_id}
    assert f"Q&A/{MARKUP}" in {a["name"] for a in found["data"]}
    gone = client.delete(f"/v1/spans/{name_to_url('span/1')}", headers=auth)
    assert gone.status_code == 204
    assert not Span.objects.filter(span_id="span/1").exists()
    assert client.get("/v1/projects/broken~x", headers=auth).status_code == 404
    # Queues, datasets and rubrics by their (hostile) names.
    for route, key in (
        (f"/v1/annotation_queues/{name_to_url(f'sessions/{MARKUP}')}", "name"),
        (f"/v1/datasets/{name_to_url(f'data/{MARKUP}')}", "name"),
        (f"/v1/annotation_configs/{name_to_url(f'rubric/{MARKUP}')}", "name"),
    ):
        response = client.get(route.replace(" ", "%20"), headers=auth)
        assert response.status_code == 200, (route, response.content)
        body = response.json()
        assert body.get("data", body)[key].endswith(MARKUP)
