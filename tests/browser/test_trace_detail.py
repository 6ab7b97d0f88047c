"""The trace and session pages in Chromium, on the demo data."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from tests import factories
from tracing.demo import demo_seed
from tracing.models import Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 1">'


@pytest.fixture
def demo(transactional_db):
    demo_seed(traces=16, project="demo")


def trace_url(trace: Trace) -> str:
    return reverse("detail:trace", kwargs={"project": "demo", "trace_id": trace.trace_id})


def spans_of(trace: Trace) -> list[Span]:
    return list(trace.spans.order_by("start_time", "id"))


def selected_id(page) -> str:
    return page.locator("#span-tree > li.selected").get_attribute("data-span-id")


def wait_for_pane(page, span: Span) -> None:
    page.locator(f'article.span-pane[data-span-id="{span.span_id}"]').wait_for()


def test_open_a_trace_and_move_through_the_span_tree_with_the_keyboard(logged_in_page, demo):
    page = logged_in_page
    trace = Trace.objects.filter(
        project__name="demo", root_span_name="support_agent", error_count=0
    ).first()
    root, plan, tool, *_ = spans_of(trace)
    page.goto(trace_url(trace))

    rows = page.locator("#span-tree > li.row")
    assert rows.count() == trace.span_count
    assert selected_id(page) == root.span_id
    assert page.locator(".pane-title").inner_text() == "support_agent"

    page.keyboard.press("ArrowDown")
    wait_for_pane(page, plan)
    assert selected_id(page) == plan.span_id
    assert page.url.endswith(f"/spans/{plan.span_id}/")
    assert page.locator(".pane-title").inner_text() == plan.name  # the planning LLM call

    page.keyboard.press("ArrowDown")
    wait_for_pane(page, tool)
    pane = page.locator("article.span-pane")
    assert pane.get_by_role("heading", name=re.compile(f"^Tool {tool.name}")).is_visible()
    assert pane.locator("details.io summary").first.inner_text().startswith("Arguments")
    assert json.loads(tool.input_value)  # shown pretty-printed:
    assert pane.locator("pre.io-value").first.inner_text() == json.dumps(
        json.loads(tool.input_value), indent=2, ensure_ascii=False
    )

    page.keyboard.press("ArrowUp")
    wait_for_pane(page, plan)
    # A reload keeps the selected span (its URL was pushed).
    page.reload()
    wait_for_pane(page, plan)
    assert selected_id(page) == plan.span_id

    # Back goes to the span shown before (the page is fetched again, not taken from storage).
    page.go_back()
    wait_for_pane(page, tool)
    assert selected_id(page) == tool.span_id

    # Up to the root; left collapses its children, right expands them again.
    page.keyboard.press("ArrowUp")
    wait_for_pane(page, plan)
    page.keyboard.press("ArrowUp")
    wait_for_pane(page, root)
    page.keyboard.press("ArrowLeft")
    assert page.locator("#span-tree > li.row:not(.hidden)").count() == 1
    page.keyboard.press("ArrowRight")
    assert page.locator("#span-tree > li.row:not(.hidden)").count() == trace.span_count
    # The twisty does the same with the mouse.
    page.locator("#span-tree > li.row").first.locator("button.twisty").click()
    assert page.locator("#span-tree > li.row:not(.hidden)").count() == 1


def test_read_an_llm_span_messages(logged_in_page, demo):
    page = logged_in_page
    trace = Trace.objects.filter(
        project__name="demo", root_span_name="answer_question", error_count=0
    ).first()
    llm = trace.spans.get(span_kind="LLM")
    page.goto(trace_url(trace))
    page.locator(f'#span-tree > li[data-span-id="{llm.span_id}"] a.span-link').click()
    wait_for_pane(page, llm)

    pane = page.locator("article.span-pane")
    messages = llm.attributes["llm"]["input_messages"]
    items = pane.locator(".messages-list").first.locator("li.message-item")
    assert items.count() == len(messages)
    first = items.first
    assert first.locator(".role").inner_text().lower() == "system"
    assert "Lumio's customer support assistant" in first.inner_text()
    output = pane.locator(".messages-list").nth(1).locator("li.message-item")
    assert output.locator(".message-content").inner_text() == llm.output_value
    assert llm.model_name in pane.locator(".facts").inner_text()
    assert '"max_tokens": 512' in pane.inner_text()  # invocation parameters, pretty
    assert str(llm.total_tokens) in pane.locator(".facts").inner_text()


def test_open_a_session_and_follow_a_turn_to_its_trace(logged_in_page, demo):
    page = logged_in_page
    session = Session.objects.filter(project__name="demo").order_by("session_id").first()
    traces = list(session.traces.order_by("start_time"))
    page.goto(
        reverse("detail:session", kwargs={"project": "demo", "session_id": session.session_id})
    )

    turns = page.locator("ol.turns > li.turn")
    assert turns.count() == len(traces) == session.trace_count
    root = traces[0].spans.get(parent_id=None)
    assert turns.first.locator(".bubble.user .bubble-text").inner_text() == root.input_value

    turns.nth(1).get_by_role("link", name="Open trace →").click()
    page.wait_for_url(f"**{trace_url(traces[1])}")
    assert page.locator("#span-tree > li.row").count() == traces[1].span_count


def test_an_xss_payload_in_span_content_stays_inert(logged_in_page):
    page = logged_in_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    trace_id = factories.next_hex(32)
    root = factories.span_record(
        trace_id=trace_id,
        name=f"root {XSS}",
        input_value=XSS,
        output_value=json.dumps({"answer": XSS}),
        attributes={"custom.payload": XSS},
        project_name="demo",
        session_id="xss",
    )
    child = factories.span_record(
        trace_id=trace_id,
        parent_id=root.span_id,
        name=XSS,
        kind="LLM",
        status_code="ERROR",
        status_message=XSS,
        attributes={
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": XSS,
        },
        events=[
            {
                "name": "exception",
                "timestamp": factories.BASE_TIME.isoformat(),
                "attributes": {"exception.type": "Boom", "exception.stacktrace": XSS},
            }
        ],
        start=factories.BASE_TIME + timedelta(milliseconds=5),
        project_name="demo",
        session_id="xss",
    )
    factories.ingest([root, child], project="demo")

    page.goto(f"/projects/demo/traces/{trace_id}/")
    assert page.locator(".pane-title").inner_text() == f"root {XSS}"
    assert XSS in page.locator("pre.io-value").first.inner_text()
    # Swap in the child's pane through htmx, then open the session page.
    page.locator(f'#span-tree > li[data-span-id="{child.span_id}"] a.span-link').click()
    wait_for_pane(page, Span.objects.get(span_id=child.span_id))
    assert page.locator(".pane-title").inner_text() == XSS
    assert page.locator("pre.stacktrace").inner_text() == XSS
    assert page.locator("#span-tree .row.error .span-name").inner_text() == XSS
    page.goto("/projects/demo/sessions/xss/")
    assert XSS in page.locator(".bubble.user").inner_text()

    assert page.evaluate("window.__xss") is None
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_a_span_that_cannot_be_loaded_says_so(logged_in_page):
    page = logged_in_page
    root, _retriever, llm = factories.trace(project="demo")
    page.goto(f"/projects/demo/traces/{root.trace.trace_id}/")
    Span.objects.filter(pk=llm.pk).delete()
    page.locator(f'#span-tree > li[data-span-id="{llm.span_id}"] a.span-link').click()
    alert = page.locator("#span-pane").get_by_role("alert")
    assert alert.inner_text() == "This span is no longer there."


def test_document_results_show_on_their_documents(logged_in_page):
    from playwright.sync_api import expect

    from annotations.store.services import AnnotationInput, annotations_upsert

    _root, retriever, _llm = factories.rag_trace(project="rag")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="DOCUMENT",
                target_id=retriever.span_id,
                document_position=position,
                name="relevance",
                annotator_kind="LLM",
                label=label,
                explanation=XSS,
            )
            for position, label in ((0, "relevant"), (2, "irrelevant"))
        ]
    )
    page = logged_in_page
    page.goto(
        reverse(
            "detail:span_pane",
            kwargs={
                "project": "rag",
                "trace_id": retriever.trace.trace_id,
                "span_id": retriever.span_id,
            },
        )
    )
    documents = page.locator("section[aria-label='Documents'] li.document")
    expect(documents).to_have_count(3)
    expect(documents.nth(0).locator(".doc-result")).to_have_text("relevance: relevant")
    expect(documents.nth(1).locator(".doc-result")).to_have_count(0)
    expect(documents.nth(2).locator(".doc-result")).to_have_text("relevance: irrelevant")
    assert page.evaluate("window.__xss") is None
