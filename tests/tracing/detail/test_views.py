import json
from datetime import timedelta

import pytest
from django.urls import reverse

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db

XSS_SCRIPT = "<script>window.__xss = 1</script>"
XSS_IMG = '<img src=x onerror="window.__xss = 1">'
HTMX = {"HX-Request": "true"}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="reader", password="pw")


@pytest.fixture
def browser_client(client, user):
    client.force_login(user)
    return client


def trace_url(project: str, trace_id: str) -> str:
    return reverse("detail:trace", kwargs={"project": project, "trace_id": trace_id})


def span_url(project: str, trace_id: str, span_id: str) -> str:
    return reverse(
        "detail:span_pane", kwargs={"project": project, "trace_id": trace_id, "span_id": span_id}
    )


def test_urls_have_the_names_and_paths_the_list_pages_link_to():
    assert trace_url("demo", "abc") == "/projects/demo/traces/abc/"
    assert span_url("demo", "abc", "def") == "/projects/demo/traces/abc/spans/def/"
    assert (
        reverse("detail:session", kwargs={"project": "demo", "session_id": "s-1"})
        == "/projects/demo/sessions/s-1/"
    )


def test_every_page_needs_a_login(client):
    root, *_ = factories.trace(session_id="conv")
    trace_id = root.trace.trace_id
    for url in (
        trace_url("default", trace_id),
        span_url("default", trace_id, root.span_id),
        reverse("detail:session", kwargs={"project": "default", "session_id": "conv"}),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_trace_page_shows_the_tree_and_the_root_span(browser_client):
    root, _retriever, llm = factories.trace(project="shop")
    response = browser_client.get(trace_url("shop", root.trace.trace_id))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="treeitem"') == 3
    # Each row links to its span with htmx, pushing the span's URL.
    assert f'hx-get="{span_url("shop", root.trace.trace_id, llm.span_id)}"' in html
    assert 'hx-push-url="true"' in html and 'hx-target="#span-pane"' in html
    # The root is selected and its pane is on the page.
    assert f'data-span-id="{root.span_id}" data-depth="0"' in html
    pane = response.context["pane"]
    assert pane.span.span_id == root.span_id
    assert "What is the refund policy?" in html
    assert "detail.js" in html and "detail.css" in html


def test_span_url_without_htmx_is_the_whole_page_with_that_span_selected(browser_client):
    root, _retriever, llm = factories.trace()
    trace_id = root.trace.trace_id
    for response in (
        browser_client.get(span_url("default", trace_id, llm.span_id)),
        browser_client.get(trace_url("default", trace_id), {"span": llm.span_id}),
        # htmx restoring history without a cached page wants the whole page too
        browser_client.get(
            span_url("default", trace_id, llm.span_id),
            headers={**HTMX, "HX-History-Restore-Request": "true"},
        ),
    ):
        html = response.content.decode()
        assert response.status_code == 200 and "<html" in html
        assert response.context["pane"].span.span_id == llm.span_id
        assert f'class="row selected" data-span-id="{llm.span_id}"' in html


def test_span_pane_for_htmx_is_the_partial_only(browser_client):
    root, _retriever, llm = factories.trace(model="gpt-4o")
    response = browser_client.get(
        span_url("default", root.trace.trace_id, llm.span_id), headers=HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "span-tree" not in html
    assert html.lstrip().startswith('<article class="span-pane"')
    assert "Input messages" in html and "gpt-4o" in html
    assert 'class="message-item role-user"' in html


@pytest.mark.parametrize("which", ["project", "trace", "span", "span_param", "other_project"])
def test_unknown_project_trace_or_span_is_404(browser_client, which):
    root, *_ = factories.trace(project="shop")
    factories.project("empty")
    trace_id, span_id = root.trace.trace_id, root.span_id
    url = {
        "project": trace_url("nope", trace_id),
        "trace": trace_url("shop", "0" * 32),
        "span": span_url("shop", trace_id, "0" * 16),
        "span_param": trace_url("shop", trace_id) + "?span=" + "0" * 16,
        "other_project": span_url("empty", trace_id, span_id),
    }[which]
    assert browser_client.get(url).status_code == 404
    assert browser_client.get(url, headers=HTMX).status_code == 404


def test_unknown_session_is_404(browser_client):
    factories.trace(session_id="conv")
    url = reverse("detail:session", kwargs={"project": "default", "session_id": "missing"})
    assert browser_client.get(url).status_code == 404
    url = reverse("detail:session", kwargs={"project": "nope", "session_id": "conv"})
    assert browser_client.get(url).status_code == 404


def test_span_content_is_escaped_everywhere(browser_client):
    trace_id = factories.next_hex(32)
    payload = f"{XSS_SCRIPT}{XSS_IMG}"
    record = factories.span_record(
        trace_id=trace_id,
        name=f"name {payload}",
        kind="LLM",
        status_code="ERROR",
        status_message=payload,
        input_value=json.dumps({"q": payload}),
        output_value=payload,
        metadata={"note": payload},
        attributes={
            "llm.model_name": payload,
            "llm.input_messages.0.message.role": payload,
            "llm.input_messages.0.message.content": payload,
            "custom.key": payload,
            f"weird.{XSS_IMG}": "value",
            "tag.tags": [payload],
        },
        events=[
            {
                "name": "exception",
                "timestamp": factories.BASE_TIME.isoformat(),
                "attributes": {"exception.type": payload, "exception.stacktrace": payload},
            },
            {"name": payload, "timestamp": factories.BASE_TIME.isoformat(), "attributes": {}},
        ],
        session_id="xss-session",
    )
    [span] = factories.ingest([record])
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=span.span_id,
                name=payload,
                annotator_kind="LLM",
                label=payload,
                explanation=payload,
            )
        ],
        project=span.project,
    )
    pages = [
        browser_client.get(trace_url("default", trace_id)),
        browser_client.get(span_url("default", trace_id, span.span_id), headers=HTMX),
        browser_client.get(
            reverse("detail:session", kwargs={"project": "default", "session_id": "xss-session"})
        ),
    ]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200
        assert "<script>window.__xss" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    trace_html = pages[0].content.decode()
    # Every place the payload appears is escaped: name, messages, attributes, events, evals.
    assert trace_html.count("&lt;img src=x onerror=&quot;window.__xss = 1&quot;&gt;") >= 10


def test_session_page_shows_turns_linking_to_their_traces_with_evaluations(browser_client):
    first = factories.trace(session_id="conv-7", input_value="How do I reset?")
    second = factories.trace(
        session_id="conv-7",
        start=factories.BASE_TIME + timedelta(minutes=3),
        input_value="It still blinks.",
        output_value="Unplug it for 10 seconds.",
    )
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=second[2].span_id,
                name="Correctness",
                annotator_kind="LLM",
                label="correct",
                score=1.0,
                explanation="Matches the docs.",
            ),
            AnnotationInput(
                target_kind="SESSION",
                target_id="conv-7",
                name="Resolution",
                annotator_kind="LLM",
                label="resolved",
            ),
        ],
        project=first[0].project,
    )
    response = browser_client.get(
        reverse("detail:session", kwargs={"project": "default", "session_id": "conv-7"})
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("How do I reset?") < html.index("It still blinks.")
    assert "Unplug it for 10 seconds." in html
    for spans in (first, second):
        assert f'href="{trace_url("default", spans[0].trace.trace_id)}"' in html
    assert "Matches the docs." in html and "resolved" in html
    assert "Turn 2" in html


def test_error_spans_and_their_ancestors_are_marked_in_the_tree(browser_client):
    root, retriever, llm = factories.trace(status_code="ERROR")
    html = browser_client.get(trace_url("default", root.trace.trace_id)).content.decode()
    assert f'class="row error error-below selected" data-span-id="{root.span_id}"' in html
    assert f'class="row error" data-span-id="{llm.span_id}"' in html
    assert f'class="row" data-span-id="{retriever.span_id}"' in html
    assert html.count('<span class="badge error" title="This span failed">error</span>') == 2


def test_span_kinds_are_shown_as_sent_with_a_badge(browser_client):
    """PROMPT has its own badge colour; a kind no one knows yet is shown as sent, its class
    built only from a plain identifier."""
    prompt = factories.span_record(name="template", kind="PROMPT")
    future = factories.span_record(
        trace_id=prompt.trace_id, parent_id=prompt.span_id, name="odd", kind='x"><b>y'
    )
    factories.ingest([prompt, future], project="kinds")

    page = browser_client.get(trace_url("kinds", prompt.trace_id)).content.decode()
    assert '<span class="kind kind-PROMPT">PROMPT</span>' in page
    assert '<span class="kind kind-other">X&quot;&gt;&lt;B&gt;Y</span>' in page
    assert 'X"><B>Y' not in page
