"""Dataset pages and the trace browser's "Add to dataset" action, through Django's test client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from annotations.datasets import services as services_datasets
from annotations.datasets import views as views_datasets
from annotations.datasets.models import Dataset, DatasetExample
from annotations.datasets.services import dataset_create
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME
HTMX = {"HX-Request": "true"}


@pytest.fixture
def staff(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="ana", password="pw", is_staff=True)
    client.force_login(user)
    return client


def _add_url(tab: str, project: str = "default", query: str = "") -> str:
    url = reverse("annotations:dataset-add", kwargs={"project": project, "tab": tab})
    return f"{url}?{query}" if query else url


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def _sources(name: str) -> list[str]:
    return list(
        DatasetExample.objects.filter(dataset__name=name)
        .order_by("id")
        .values_list("source_span_id", flat=True)
    )


# --- pages -------------------------------------------------------------------------------------


def test_pages_require_login(client):
    dataset = dataset_create(name="d").dataset
    for url in (
        reverse("annotations:datasets"),
        reverse("annotations:dataset", args=[dataset.pk]),
        reverse("annotations:dataset-download", args=[dataset.pk]),
        reverse("annotations:dataset-delete", args=[dataset.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    response = client.post(_add_url("spans"), {"selected": ["x"], "dataset": "d"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_navigation_links_to_the_datasets(staff):
    html = staff.get(reverse("tracing:projects")).content.decode()
    assert f'href="{reverse("annotations:datasets")}"' in html
    assert reverse("annotations:datasets") == "/datasets/"


def test_list_shows_each_dataset_with_its_example_count(staff):
    spans = factories.trace()
    dataset_create(name="refunds", description="golden answers", spans=[s.pk for s in spans])
    dataset_create(name="empty one")
    html = staff.get(reverse("annotations:datasets")).content.decode()
    rows = re.findall(
        r'<a href="/datasets/\d+/">([^<]+)</a>.*?<td class="num">(\d+)</td>', html, re.S
    )
    assert sorted(rows) == [("empty one", "0"), ("refunds", "3")]
    assert "golden answers" in html


def test_list_without_datasets_says_how_to_make_one(staff):
    html = staff.get(reverse("annotations:datasets")).content.decode()
    assert "No datasets yet" in html and "Add to dataset…" in html


def test_detail_lists_examples_a_page_at_a_time(staff, monkeypatch):
    monkeypatch.setattr(views_datasets, "EXAMPLES_PER_PAGE", 2)
    spans = factories.trace(metadata={"reference": "gold"}) + factories.trace(
        project="default", input_value="<b>bold</b>"
    )
    annotations_upsert(
        items=[
            AnnotationInput(target_kind="SPAN", target_id=spans[0].span_id, name="ok", label="yes")
        ]
    )
    dataset = dataset_create(name="d", description="about refunds", spans=[s.pk for s in spans])
    url = reverse("annotations:dataset", args=[dataset.dataset.pk])

    html = staff.get(url).content.decode()
    assert "6 examples" in html and "about refunds" in html
    assert re.findall(r'data-span-id="([^"]+)"', html) == [spans[0].span_id, spans[1].span_id]
    assert "ok: yes" in html and "gold" in html
    assert (
        f'href="/projects/default/traces/{spans[0].trace.trace_id}/?span={spans[0].span_id}"'
        in html
    )
    assert "Examples 1\u20132 of 6" in html
    for export_format in ("csv", "jsonl", "parquet"):
        assert f"/datasets/{dataset.dataset.pk}/download/?format={export_format}" in html

    page3 = staff.get(url, {"page": 3}, headers=HTMX).content.decode()
    assert page3.lstrip().startswith('<div id="examples">')  # only the swapped part
    assert "<html" not in page3
    assert re.findall(r'data-span-id="([^"]+)"', page3) == [spans[4].span_id, spans[5].span_id]
    assert "&lt;b&gt;bold&lt;/b&gt;" in page3 and "<b>bold</b>" not in page3


def test_unknown_dataset_is_404(staff):
    assert staff.get(reverse("annotations:dataset", args=[404])).status_code == 404
    named = dataset_create(name="7").dataset  # a name is not an id
    assert staff.get(reverse("annotations:dataset", args=[named.pk + 7])).status_code == 404


def test_rename_and_describe(staff):
    dataset = dataset_create(name="old").dataset
    dataset_create(name="taken")
    url = reverse("annotations:dataset-edit", args=[dataset.pk])
    response = staff.post(url, {"name": " new ", "description": "what it holds"})
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:dataset", args=[dataset.pk])
    assert _messages(response) == ["Saved."]
    dataset.refresh_from_db()
    assert (dataset.name, dataset.description) == ("new", "what it holds")

    response = staff.post(url, {"name": "taken", "description": ""}, follow=True)
    assert (
        "Not saved: a dataset named &#x27;taken&#x27; already exists" in response.content.decode()
    )
    response = staff.post(url, {"name": "", "description": ""}, follow=True)
    assert "Not saved: name: must not be empty" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.name == "new"
    assert staff.get(url).status_code == 405


def test_delete_asks_then_deletes(staff):
    dataset = dataset_create(name="doomed", spans=[factories.trace()[0].pk]).dataset
    url = reverse("annotations:dataset-delete", args=[dataset.pk])
    html = staff.get(url).content.decode()
    assert "Delete the dataset doomed?" in html and "1 example" in html
    assert Dataset.objects.exists()
    response = staff.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("annotations:datasets")
    assert "Deleted the dataset doomed." in response.content.decode()
    assert not Dataset.objects.exists() and not DatasetExample.objects.exists()


# --- the trace browser's bulk action ----------------------------------------------------------


def test_trace_browser_offers_add_to_dataset(staff):
    factories.trace(start=T0)
    url = reverse("tracing:traces", kwargs={"project": "default"})
    html = staff.get(url, {"q": "latency_ms > 1", "after": "x", "range": "all"}).content.decode()
    assert "Add to dataset…" in html
    assert f'formaction="{_add_url("traces")}" data-needs-selection disabled>Add selected' in html
    # "Add all matching" carries the table's filter, not its page.
    match = re.search(r'formaction="([^"]+)" name="scope" value="all"', html)
    assert match is not None
    assert match.group(1) == _add_url("traces", query="q=latency_ms+%3E+1&amp;range=all")
    assert 'name="dataset" list="dataset-names"' in html


def test_options_list_the_datasets_and_the_projects_annotation_names(staff):
    span = factories.trace(project="shop")[0]
    factories.trace(project="other")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=span.span_id, name="gold", explanation="x"
            )
        ]
    )
    dataset_create(name="refunds")
    html = staff.get(reverse("annotations:dataset-options"), {"project": "shop"}).content.decode()
    assert '<datalist id="dataset-names"><option value="refunds"></datalist>' in html
    assert '<datalist id="dataset-annotation-names"><option value="gold"></datalist>' in html
    html = staff.get(reverse("annotations:dataset-options"), {"project": "other"}).content.decode()
    assert '<datalist id="dataset-annotation-names"></datalist>' in html


def test_selected_spans_go_to_a_new_dataset(staff):
    spans = factories.trace(start=T0)
    back = reverse("tracing:spans", kwargs={"project": "default"})
    response = staff.post(
        _add_url("spans"),
        {"selected": [spans[2].span_id, spans[0].span_id], "dataset": "picked", "next": back},
    )
    dataset = Dataset.objects.get(name="picked")
    assert response["Location"] == reverse("annotations:dataset", args=[dataset.pk])
    assert _messages(response) == ["Created the dataset picked with 2 examples."]
    assert _sources("picked") == [spans[2].span_id, spans[0].span_id]
    assert dataset.created_by.username == "ana"


def test_selected_traces_and_sessions_become_their_root_spans(staff):
    first = factories.trace(start=T0, session_id="s-1")
    second = factories.trace(start=T0 + timedelta(minutes=1), session_id="s-1")
    third = factories.trace(start=T0 + timedelta(minutes=2), session_id="s-2")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="TRACE", target_id=second[0].trace.trace_id, name="ok", label="no"
            )
        ]
    )
    staff.post(
        _add_url("traces"),
        {"selected": [second[0].trace.trace_id], "dataset": "traces"},
    )
    assert _sources("traces") == [second[0].span_id]
    assert DatasetExample.objects.get(dataset__name="traces").labels == {
        "ok": {"label": "no", "score": None, "explanation": None}
    }
    staff.post(_add_url("sessions"), {"selected": ["s-2", "s-1"], "dataset": "sessions"})
    assert _sources("sessions") == [third[0].span_id, first[0].span_id]


def test_adding_to_an_existing_dataset_skips_what_it_has(staff):
    spans = factories.trace(start=T0)
    dataset = dataset_create(name="mine", spans=[spans[0].pk]).dataset
    response = staff.post(
        _add_url("spans"),
        {"selected": [s.span_id for s in spans], "dataset": "mine", "expected_from": ""},
    )
    assert _messages(response) == ["Added 2 examples to mine (1 already in it)."]
    assert response["Location"] == reverse("annotations:dataset", args=[dataset.pk])
    assert len(_sources("mine")) == 3


def test_expected_output_from_the_chosen_annotation(staff):
    span = factories.trace(start=T0, metadata={"reference": "meta"})[0]
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=span.span_id, name="fix", explanation="chosen"
            )
        ]
    )
    staff.post(
        _add_url("spans"), {"selected": [span.span_id], "dataset": "a", "expected_from": "fix"}
    )
    staff.post(_add_url("spans"), {"selected": [span.span_id], "dataset": "b"})
    assert DatasetExample.objects.get(dataset__name="a").expected_output == "chosen"
    assert DatasetExample.objects.get(dataset__name="b").expected_output == "meta"


def test_add_all_matching_uses_the_filter_in_the_query_string(staff):
    ok = factories.trace(start=T0)
    bad = factories.trace(start=T0 + timedelta(minutes=1), status_code="ERROR")
    response = staff.post(
        _add_url("traces", query="q=status_code+%3D+%27ERROR%27&size=25&range=all"),
        {"scope": "all", "selected": [ok[0].trace.trace_id], "dataset": "errors"},
    )
    assert response.status_code == 302
    assert _sources("errors") == [bad[0].span_id]  # the selection does not count
    staff.post(
        _add_url("spans", query="kind=LLM&range=all"), {"scope": "all", "dataset": "llm calls"}
    )
    assert _sources("llm calls") == [bad[2].span_id, ok[2].span_id]
    staff.post(_add_url("spans", query="range=all"), {"scope": "all", "dataset": "everything"})
    assert len(_sources("everything")) == 6
    # With no range, the default one (the last 7 days), as the table shows it: nothing here.
    staff.post(_add_url("spans"), {"scope": "all", "dataset": "this week"})
    assert _sources("this week") == []


def test_add_all_refuses_more_than_the_limit(staff, monkeypatch):
    monkeypatch.setattr(services_datasets, "MAX_EXAMPLES_PER_ADD", 2)
    monkeypatch.setattr(views_datasets, "MAX_EXAMPLES_PER_ADD", 2)
    factories.trace(start=T0)
    response = staff.post(_add_url("spans", query="range=all"), {"scope": "all", "dataset": "big"})
    assert _messages(response) == [
        "Nothing added: more than 2 spans match; narrow the filter down."
    ]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("post", "query", "message"),
    [
        (lambda span: {"dataset": "d"}, "", "Select rows to add to a dataset first."),
        (
            lambda span: {"selected": ["nope", span.span_id], "dataset": "d"},
            "",
            "Nothing added: not found in default: nope",
        ),
        (
            lambda span: {"selected": [span.span_id], "dataset": "  "},
            "",
            "Nothing added: the dataset name must not be empty.",
        ),
        (
            lambda span: {"scope": "all", "dataset": "d"},
            "q=latncy_ms+%3E+1",
            "Nothing added: the filter has an error: unknown field 'latncy_ms' at column 1",
        ),
    ],
)
def test_refusals_go_back_with_a_message_and_write_nothing(staff, post, query, message):
    span = factories.trace(start=T0)[0]
    back = reverse("tracing:spans", kwargs={"project": "default"}) + "?q=x"
    response = staff.post(_add_url("spans", query=query), {**post(span), "next": back})
    assert response["Location"] == back
    (shown,) = _messages(response)
    assert shown.startswith(message)
    assert not Dataset.objects.exists()


def test_unknown_tab_or_project_is_404_and_foreign_next_is_ignored(staff):
    span = factories.trace(start=T0)[0]
    assert staff.post(_add_url("rows"), {"selected": ["x"], "dataset": "d"}).status_code == 404
    assert staff.post(_add_url("spans", project="nope"), {"dataset": "d"}).status_code == 404
    response = staff.post(_add_url("spans"), {"dataset": "d", "next": "https://evil.example/"})
    assert response["Location"] == reverse("tracing:spans", kwargs={"project": "default"})
    assert staff.get(_add_url("spans")).status_code == 405
    assert not DatasetExample.objects.filter(source_span_id=span.span_id).exists()
