"""Labeling queue pages: list, create/edit, detail with progress and items, adding from a
filter and from the trace browser's selection, and the labeling view."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from annotations.models import Annotation
from annotations.queues.models import LabelingQueue, LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user(username="lead", is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def correctness():
    return annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )


@pytest.fixture
def relevance():
    return annotation_config_create(
        name="relevance", kind="CONTINUOUS", lower_bound=0, upper_bound=10
    )


def make_traces(n: int, **kwargs):
    return [
        factories.trace(start=factories.BASE_TIME + timedelta(minutes=i), **kwargs)
        for i in range(n)
    ]


@pytest.fixture
def queue(staff, correctness):
    queue = queue_create(
        name="Support answers",
        instructions="Is the **answer** right?",
        item_kind="TRACE",
        configs=[correctness],
        assignees=[staff],
    )
    spans = make_traces(2, input_value="How do refunds work?")
    queue_items_add(queue=queue, trace_ids=[s[0].trace.trace_id for s in spans])
    return queue


def test_list_shows_queues_with_progress(client, queue):
    response = client.get(reverse("annotations:queues"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Support answers" in html
    assert "0 / 2" in html
    assert "2</strong> to do" in html
    assert reverse("annotations:queue-label", args=[queue.pk]) in html


def test_create_a_queue(client, staff, correctness):
    response = client.post(
        reverse("annotations:queue-new"),
        {
            "name": "Spans to check",
            "instructions": "Look at the tool calls.",
            "item_kind": "SPAN",
            "configs": [correctness.pk],
            "assignees": [staff.pk],
            "assignment_mode": "ROUND_ROBIN",
        },
    )
    queue = LabelingQueue.objects.get(name="Spans to check")
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:queue-add", args=[queue.pk])
    assert queue.item_kind == "SPAN"
    assert queue.assignment_mode == "ROUND_ROBIN"
    assert list(queue.configs.all()) == [correctness]
    assert list(queue.assignees.all()) == [staff]
    assert queue.created_by == staff


def test_create_without_a_rubric_says_so(client, staff, correctness):
    response = client.post(
        reverse("annotations:queue-new"),
        {"name": "q", "item_kind": "TRACE", "assignment_mode": "ALL"},
    )
    assert response.status_code == 200
    assert "choose at least one annotation config" in response.content.decode()
    assert not LabelingQueue.objects.exists()


def test_edit_keeps_the_item_kind_once_there_are_items(client, queue, correctness, staff):
    response = client.post(
        reverse("annotations:queue-edit", args=[queue.pk]),
        {
            "name": "Renamed",
            "item_kind": "SPAN",
            "configs": [correctness.pk],
            "assignees": [staff.pk],
            "assignment_mode": "ALL",
        },
    )
    assert "cannot change once the queue has items" in response.content.decode()
    queue.refresh_from_db()
    assert (queue.name, queue.item_kind) == ("Support answers", "TRACE")
    response = client.post(
        reverse("annotations:queue-edit", args=[queue.pk]),
        {
            "name": "Renamed",
            "item_kind": "TRACE",
            "configs": [correctness.pk],
            "assignees": [staff.pk],
            "assignment_mode": "ALL",
        },
    )
    assert response.status_code == 302
    queue.refresh_from_db()
    assert queue.name == "Renamed"


def test_detail_shows_progress_and_items_with_states(client, queue, staff):
    item = LabelingQueueItem.objects.filter(queue=queue).order_by("id").first()
    client.post(
        reverse("annotations:queue-item", args=[queue.pk, item.pk]),
        {"action": "submit", f"config_{queue.configs.get().pk}": "correct"},
    )
    response = client.get(reverse("annotations:queue", args=[queue.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-progress="completed">1<' in html
    assert 'data-progress="pending">1<' in html
    assert 'data-annotator="lead"' in html
    assert "lead: completed" in html
    assert "Is the **answer** right?" in html  # instructions, escaped as text

    completed = client.get(
        reverse("annotations:queue", args=[queue.pk]),
        {"state": "COMPLETED"},
        HTTP_HX_REQUEST="true",
    )
    body = completed.content.decode()
    assert "<html" not in body
    assert body.count('data-state="COMPLETED"') == 1
    assert 'data-state="PENDING"' not in body
    progress = client.get(
        reverse("annotations:queue", args=[queue.pk]), {"part": "progress"}, HTTP_HX_REQUEST="true"
    )
    assert 'id="progress"' in progress.content.decode()
    assert 'hx-trigger="every 10s"' in progress.content.decode()


def test_add_from_a_filter_page(client, staff, correctness):
    queue = queue_create(name="slow", item_kind="TRACE", configs=[correctness])
    make_traces(2, llm_latency_ms=3000)
    make_traces(1, llm_latency_ms=10)
    url = reverse("annotations:queue-add", args=[queue.pk])
    assert client.get(url).status_code == 200

    bad = client.post(url, {"project": "default", "filter": "latncy_ms > 1", "sample_percent": 100})
    html = bad.content.decode()
    assert bad.status_code == 200
    assert "Column 1:" in html
    assert "did you mean" in html
    assert not LabelingQueueItem.objects.exists()

    good = client.post(
        url,
        {"project": "default", "filter": "latency_ms > 1000", "limit": 5, "sample_percent": 100},
        follow=True,
    )
    assert "Added 2 traces to slow." in good.content.decode()
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 2


def test_add_the_selected_rows_from_the_trace_browser(client, staff, correctness):
    queue = queue_create(name="picked", item_kind="TRACE", configs=[correctness])
    spans = make_traces(2)
    page = client.get(reverse("tracing:traces", kwargs={"project": "default"}) + "?range=all")
    html = page.content.decode()
    assert 'name="labeling_queue"' in html
    assert f'<option value="{queue.pk}">picked</option>' in html
    assert reverse("annotations:queue-add-selected", args=["default"]) in html

    back = reverse("tracing:traces", kwargs={"project": "default"})
    response = client.post(
        reverse("annotations:queue-add-selected", args=["default"]),
        {
            "labeling_queue": queue.pk,
            "selected": [s[0].trace.trace_id for s in spans],
            "next": back,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == back
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 2
    again = client.post(
        reverse("annotations:queue-add-selected", args=["default"]),
        {"labeling_queue": queue.pk, "selected": [spans[0][0].trace.trace_id], "next": back},
        follow=True,
    )
    assert "Added 0 traces to picked. 1 was already in it." in again.content.decode()


def test_labeling_a_trace_from_next_to_done(client, queue, staff, correctness):
    next_url = reverse("annotations:queue-label", args=[queue.pk])
    response = client.get(next_url)
    first = LabelingQueueItem.objects.filter(queue=queue).order_by("id").first()
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:queue-item", args=[queue.pk, first.pk])

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "How do refunds work?" in html  # the trace's input
    assert 'id="span-tree"' in html and "retrieve" in html  # its span tree
    assert "<kbd>1</kbd>" in html and "correct" in html  # the rubric with shortcuts
    first.refresh_from_db()
    assert first.reserved_by == staff

    field = f"config_{correctness.pk}"
    invalid = client.post(page.request["PATH_INFO"], {"action": "submit"})
    assert invalid.status_code == 400
    assert "choose a value" in invalid.content.decode()
    assert not Annotation.objects.exists()

    done = client.post(page.request["PATH_INFO"], {"action": "submit", field: "incorrect"})
    assert done.status_code == 302
    assert done["Location"] == next_url
    annotation = Annotation.objects.get()
    assert (annotation.label, annotation.identifier, annotation.trace_id) == (
        "incorrect",
        "lead",
        first.trace_id,
    )

    second = client.get(next_url)["Location"]
    assert client.post(second, {"action": "skip"})["Location"] == next_url
    end = client.get(next_url)
    assert end.status_code == 200
    html = end.content.decode()
    assert "You are done with Support answers" in html
    assert "Go through the 1 item you skipped" in html
    assert 'id="previous-link"' in html

    # Back to the first item: the answer is there, to change.
    again = client.get(reverse("annotations:queue-item", args=[queue.pk, first.pk]))
    assert 'value="incorrect" checked' in again.content.decode()
    assert "You labelled this item" in again.content.decode()


def test_picking_a_span_of_the_trace_loads_its_pane(client, queue, staff):
    item = LabelingQueueItem.objects.filter(queue=queue).order_by("id").first()
    llm = item.trace.spans.get(name="llm")
    url = reverse("annotations:queue-item", args=[queue.pk, item.pk])
    response = client.get(url, {"span": llm.span_id}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert f'data-span-id="{llm.span_id}"' in html
    assert "gpt-4o-mini" in html


def test_span_and_session_items(client, staff, correctness):
    spans = factories.trace(session_id="conv-9", input_value="hello there")
    span_queue = queue_create(
        name="spans", item_kind="SPAN", configs=[correctness], assignees=[staff]
    )
    queue_items_add(queue=span_queue, span_ids=[spans[2].span_id])
    page = client.get(
        client.get(reverse("annotations:queue-label", args=[span_queue.pk]))["Location"]
    )
    assert page.status_code == 200
    assert f'data-span-id="{spans[2].span_id}"' in page.content.decode()

    session_queue = queue_create(
        name="sessions", item_kind="SESSION", configs=[correctness], assignees=[staff]
    )
    queue_items_add(queue=session_queue, session_ids=["conv-9"], project=factories.project())
    location = client.get(reverse("annotations:queue-label", args=[session_queue.pk]))["Location"]
    page = client.get(location)
    html = page.content.decode()
    assert 'aria-label="Conversation"' in html
    assert "hello there" in html
    client.post(location, {"action": "submit", f"config_{correctness.pk}": "correct"})
    annotation = Annotation.objects.get(session__session_id="conv-9")
    assert annotation.target_kind == "SESSION"


def test_someone_else_holding_the_item_is_shown_and_blocks_submitting(
    client, queue, staff, django_user_model, correctness
):
    other = django_user_model.objects.create_user(username="other")
    queue.assignees.add(other)
    item = LabelingQueueItem.objects.filter(queue=queue).order_by("id").first()
    client.force_login(other)
    client.get(reverse("annotations:queue-item", args=[queue.pk, item.pk]))
    client.force_login(staff)
    page = client.get(reverse("annotations:queue-item", args=[queue.pk, item.pk]))
    assert "other is labelling this item" in page.content.decode()
    response = client.post(
        reverse("annotations:queue-item", args=[queue.pk, item.pk]),
        {"action": "submit", f"config_{correctness.pk}": "correct"},
    )
    assert response.status_code == 400
    assert not Annotation.objects.exists()
    # "Next item" hands out the other one.
    nxt = client.get(reverse("annotations:queue-label", args=[queue.pk]))["Location"]
    assert nxt.endswith(f"/{item.pk + 1}/")


def test_someone_not_assigned_reads_but_cannot_label(client, queue, django_user_model):
    outsider = django_user_model.objects.create_user(username="outsider")
    client.force_login(outsider)
    item = LabelingQueueItem.objects.filter(queue=queue).first()
    page = client.get(reverse("annotations:queue-item", args=[queue.pk, item.pk]))
    assert page.status_code == 200
    assert "You are not an assignee" in page.content.decode()
    assert client.get(reverse("annotations:queue-label", args=[queue.pk])).status_code == 403
    response = client.post(
        reverse("annotations:queue-item", args=[queue.pk, item.pk]), {"action": "skip"}
    )
    assert response.status_code == 403
    assert not item.reviews.exists()


def test_an_open_queue_item_labelled_first_by_someone_else_says_so(
    client, staff, correctness, django_user_model
):
    queue = queue_create(name="open", item_kind="TRACE", configs=[correctness])
    spans = make_traces(1)
    queue_items_add(queue=queue, trace_ids=[spans[0][0].trace.trace_id])
    item = LabelingQueueItem.objects.get(queue=queue)
    url = reverse("annotations:queue-item", args=[queue.pk, item.pk])
    field = f"config_{correctness.pk}"
    other = django_user_model.objects.create_user(username="other")
    client.force_login(other)
    assert client.post(url, {"action": "submit", field: "correct"}).status_code == 302

    client.force_login(staff)
    response = client.post(url, {"action": "submit", field: "incorrect"}, follow=True)
    assert "other labelled this item first" in response.content.decode()
    assert "your answers were not saved" in response.content.decode()
    assert list(Annotation.objects.values_list("identifier", "label")) == [("other", "correct")]


def test_the_items_list_shows_each_items_input_and_output(client, queue):
    html = client.get(reverse("annotations:queue", args=[queue.pk])).content.decode()
    assert "Input and output" in html
    assert "How do refunds work?" in html  # each trace's root input
    assert "Refunds are accepted within 30 days." in html  # and its output


def test_a_session_items_row_shows_its_first_input_and_last_output(client, staff, correctness):
    factories.trace(session_id="conv-1", input_value="first question", start=factories.BASE_TIME)
    factories.trace(
        session_id="conv-1",
        input_value="second question",
        output_value="the last answer",
        start=factories.BASE_TIME + timedelta(minutes=5),
    )
    sessions = queue_create(
        name="conversations", item_kind="SESSION", configs=[correctness], assignees=[staff]
    )
    queue_items_add(queue=sessions, session_ids=["conv-1"], project=factories.project())
    html = client.get(reverse("annotations:queue", args=[sessions.pk])).content.decode()
    assert "Conversation" in html
    assert "first question" in html and "the last answer" in html
    assert "second question" not in html


def _judge_result(span, label: str) -> Annotation:
    return Annotation.objects.create(
        project=span.project,
        target_kind="SPAN",
        span=span,
        name="JudgeSays",
        annotator_kind="LLM",
        label=label,
        explanation="the judge's reasoning",
    )


def test_machine_results_are_hidden_until_the_person_submits(client, staff, correctness):
    span = factories.trace(input_value="Where is my parcel?")[0]
    _judge_result(span, "judge-verdict-xyz")
    blind = queue_create(
        name="calibration",
        item_kind="SPAN",
        configs=[correctness],
        assignees=[staff],
        hide_machine_results=True,
    )
    queue_items_add(queue=blind, span_ids=[span.span_id])
    item = LabelingQueueItem.objects.get(queue=blind)
    url = reverse("annotations:queue-item", args=[blind.pk, item.pk])

    before = client.get(url).content.decode()
    assert "Where is my parcel?" in before  # what there is to judge, at the top
    assert "judge-verdict-xyz" not in before
    assert "the judge&#x27;s reasoning" not in before
    assert "hidden until you submit your label" in before

    client.post(url, {"action": "submit", f"config_{correctness.pk}": "correct"})
    after = client.get(url).content.decode()
    assert "judge-verdict-xyz" in after
    assert "hidden until you submit" not in after


def test_without_the_setting_the_judges_result_is_shown(client, staff, correctness):
    span = factories.trace()[0]
    _judge_result(span, "judge-verdict-xyz")
    open_queue = queue_create(
        name="plain", item_kind="SPAN", configs=[correctness], assignees=[staff]
    )
    assert open_queue.hide_machine_results is False
    queue_items_add(queue=open_queue, span_ids=[span.span_id])
    item = LabelingQueueItem.objects.get(queue=open_queue)
    html = client.get(reverse("annotations:queue-item", args=[open_queue.pk, item.pk])).content
    assert b"judge-verdict-xyz" in html


def test_the_queue_form_sets_and_keeps_hide_machine_results(client, staff, correctness):
    response = client.post(
        reverse("annotations:queue-new"),
        {
            "name": "blind",
            "item_kind": "TRACE",
            "configs": [correctness.pk],
            "assignment_mode": "ALL",
            "hide_machine_results": "on",
        },
    )
    assert response.status_code == 302
    queue = LabelingQueue.objects.get(name="blind")
    assert queue.hide_machine_results is True
    edit = client.get(reverse("annotations:queue-edit", args=[queue.pk])).content.decode()
    assert re.search(r'<input type="checkbox" name="hide_machine_results"[^>]* checked', edit)
    client.post(
        reverse("annotations:queue-edit", args=[queue.pk]),
        {
            "name": "blind",
            "item_kind": "TRACE",
            "configs": [correctness.pk],
            "assignment_mode": "ALL",
        },
    )
    queue.refresh_from_db()
    assert queue.hide_machine_results is False
