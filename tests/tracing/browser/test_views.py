"""Trace browser pages through Django's test client: every filter, sort, page, export, delete."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from django.utils import timezone

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span, Trace

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME
HTMX = {"HX-Request": "true"}


@pytest.fixture
def staff(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="ana", password="pw", is_staff=True)
    client.force_login(user)
    return client


def _names(html: str) -> list[str]:
    """The names in the table's name column, in order."""
    return re.findall(r'<td class="name" title="[^"]*">(?:<a [^>]*>)?([^<]*)', html)


def _url(tab: str = "traces", project: str = "default") -> str:
    return reverse(f"tracing:{tab}", kwargs={"project": project})


def _shop() -> dict[str, list[Span]]:
    """Four traces: ok/gpt-4o-mini, error/gpt-4o, ok/claude evaluated, one 3 days older."""
    now = timezone.now()
    traces = {
        "ok": factories.trace(start=now - timedelta(minutes=30), input_value="ok question"),
        "error": factories.trace(
            start=now - timedelta(minutes=20),
            status_code="ERROR",
            model="gpt-4o",
            input_value="failing question",
        ),
        "evaluated": factories.trace(
            start=now - timedelta(minutes=10), model="claude-3-5-sonnet", input_value="judged"
        ),
        "old": factories.trace(start=now - timedelta(days=3), input_value="old question"),
    }
    for name, spans in traces.items():
        Span.objects.filter(pk=spans[0].pk).update(name=f"{name}-root")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=traces["evaluated"][0].span_id,
                name="Correctness",
                annotator_kind="LLM",
                label="correct",
                score=1.0,
            )
        ]
    )
    return traces


# --- access and navigation --------------------------------------------------------------------


def test_every_page_requires_login(client):
    factories.project("default")
    for url in (
        reverse("tracing:projects"),
        _url("traces"),
        _url("spans"),
        _url("sessions"),
        reverse("tracing:export", kwargs={"project": "default", "tab": "traces"}),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_home_redirects_to_projects_and_navigation_shows_it(staff):
    response = staff.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("tracing:projects")
    page = staff.get(reverse("tracing:projects")).content.decode()
    assert 'aria-current="page">Projects</a>' in page


def test_unknown_project_is_404(staff):
    assert staff.get(_url("traces", "nope")).status_code == 404


# --- projects ---------------------------------------------------------------------------------


def test_projects_page_shows_cards_with_stats_for_the_range(staff):
    _shop()
    page = staff.get(reverse("tracing:projects"), {"range": "24h"}).content.decode()
    assert 'href="/projects/default/traces/?range=24h"' in page  # the tabs keep the range
    assert re.search(r'data-stat="traces">3<', page)  # the 3-day-old trace is outside 24 h
    assert re.search(r'data-stat="spans">9<', page)
    assert re.search(r'data-stat="error-rate">33.3%<', page)
    assert "Correctness" in page and "correct 100.0%" in page
    week = staff.get(reverse("tracing:projects"), {"range": "7d"}).content.decode()
    assert re.search(r'data-stat="traces">4<', week)
    start = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    custom = staff.get(
        reverse("tracing:projects"), {"range": "custom", "start": start, "end": end}
    ).content.decode()
    assert re.search(r'data-stat="traces">1<', custom)


def test_projects_page_marks_percentiles_from_histograms_as_approximate(staff, monkeypatch):
    from tracing.browser import projects

    for minutes in (0, 70, 140):
        factories.trace(start=timezone.now() - timedelta(hours=5, minutes=minutes))
    page = staff.get(reverse("tracing:projects"), {"range": "24h"}).content.decode()
    assert re.search(r'data-stat="p50">\d', page) and "≈" not in page
    monkeypatch.setattr(projects, "EXACT_PERCENTILES_UP_TO", 2)
    page = staff.get(reverse("tracing:projects"), {"range": "24h"}).content.decode()
    assert re.search(r'data-stat="traces">3<', page)
    assert re.search(r'data-stat="p50" title="Approximate[^"]*">≈\d', page)
    assert re.search(r'data-stat="p99" title="Approximate[^"]*">≈\d', page)


def test_projects_htmx_request_gets_only_the_cards(staff):
    _shop()
    response = staff.get(reverse("tracing:projects"), {"range": "1h"}, headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body and "project-card" in body


def test_projects_empty_state_says_how_to_send_the_first_trace(staff):
    page = staff.get(reverse("tracing:projects")).content.decode()
    assert "Send your first trace" in page
    assert "http://testserver/v1/traces" in page
    assert 'data-copy="otel-snippet"' in page and "OTLPSpanExporter" in page


# --- tables and filters -----------------------------------------------------------------------


def test_traces_tab_shows_root_spans_with_previews_and_badges(staff):
    _shop()
    page = staff.get(_url()).content.decode()
    assert _names(page) == ["evaluated-root", "error-root", "ok-root", "old-root"]
    assert "judged" in page and "Correctness: correct" in page
    assert 'class="tabs"' in page and 'aria-current="page">Traces</a>' in page


def test_spans_tab_shows_every_span(staff):
    _shop()
    page = staff.get(_url("spans")).content.decode()
    assert len(_names(page)) == 12


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "status_code = 'ERROR'"}, ["error-root"]),
        ({"status": "ERROR"}, ["error-root"]),
        # A trace is listed when any of its spans matches: the error trace's retriever is UNSET.
        ({"status": ["OK", "UNSET"]}, ["evaluated-root", "error-root", "ok-root", "old-root"]),
        ({"status": ["OK", "UNSET"], "root": "1"}, ["evaluated-root", "ok-root", "old-root"]),
        (
            {"q": "status_code IN ('OK', 'UNSET') and parent_id IS NULL"},
            ["evaluated-root", "ok-root", "old-root"],
        ),
        ({"range": "1h"}, ["evaluated-root", "error-root", "ok-root"]),
        ({"range": "7d", "q": "input = 'ok question'"}, ["ok-root"]),
        ({"kind": "AGENT"}, ["evaluated-root", "error-root", "ok-root", "old-root"]),
        ({"kind": "LLM"}, ["evaluated-root", "error-root", "ok-root", "old-root"]),
        ({"kind": "LLM", "root": "1"}, []),
        ({"q": "model_name = 'gpt-4o'"}, ["error-root"]),  # on the LLM child
        ({"range": "1h", "q": "model_name = 'gpt-4o-mini'"}, ["ok-root"]),
        ({"evaluated": "yes"}, ["evaluated-root"]),
        ({"evaluated": "no"}, ["error-root", "ok-root", "old-root"]),  # none of its spans has one
        ({"evaluated": "no", "root": "1"}, ["error-root", "ok-root", "old-root"]),
        ({"evaluated": "yes", "evaluation": "Correctness"}, ["evaluated-root"]),
        ({"evaluated": "yes", "evaluation": "Other"}, []),
        # Equal latencies: ties go by id, in the sort's direction.
        (
            {"sort": "latency", "order": "asc"},
            ["ok-root", "error-root", "evaluated-root", "old-root"],
        ),
    ],
)
def test_traces_filters(staff, params, expected):
    _shop()
    page = staff.get(_url(), params).content.decode()
    assert _names(page) == expected


def test_custom_range_filters_between_start_and_end(staff):
    _shop()
    start = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = staff.get(_url(), {"range": "custom", "start": start, "end": end}).content.decode()
    assert _names(page) == ["old-root"]


def test_model_quick_filter_on_spans(staff):
    _shop()
    page = staff.get(_url("spans"), {"model": "gpt-4o"}).content.decode()
    assert _names(page) == ["llm"]
    assert "failing question" in page
    assert "model_name = &#x27;gpt-4o&#x27;" in page  # the filter, shown as one expression


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("start_time", "evaluated-root"),
        ("latency", "evaluated-root"),
        ("tokens", None),
        ("cost", None),
    ],
)
def test_every_sort_orders_the_table(staff, sort, first):
    traces = _shop()
    heavy = traces["ok"][0]
    Span.objects.filter(pk=heavy.pk).update(latency_ms=99_999)
    Trace.objects.filter(pk=heavy.trace_id).update(total_tokens=10**6, cost=42.0)
    page = staff.get(_url(), {"sort": sort}).content.decode()
    names = _names(page)
    if sort in ("tokens", "cost", "latency"):
        assert names[0] == "ok-root"
    else:
        assert names[0] == first
    ascending = _names(staff.get(_url(), {"sort": sort, "order": "asc"}).content.decode())
    assert ascending[-1] == names[0]


def test_sessions_tab_rows(staff):
    now = timezone.now()
    factories.trace(start=now - timedelta(minutes=9), session_id="chat-9", input_value="<b>hi</b>")
    factories.trace(start=now - timedelta(minutes=8), session_id="chat-9", output_value="the end")
    page = staff.get(_url("sessions")).content.decode()
    assert "chat-9" in page and "&lt;b&gt;hi&lt;/b&gt;" in page and "the end" in page
    assert re.search(r'<td class="num">2</td>', page)  # turns


def test_sessions_empty_state(staff):
    factories.trace()
    page = staff.get(_url("sessions")).content.decode()
    assert "No sessions yet" in page and "session.id" in page


def test_project_without_traces_shows_the_first_trace_snippet(staff):
    factories.project("fresh")
    page = staff.get(_url("traces", "fresh")).content.decode()
    assert "Send your first trace" in page and "/v1/traces" in page
    assert '"openinference.project.name": "fresh"' in page


def test_no_match_says_what_to_do(staff):
    _shop()
    page = staff.get(_url(), {"q": "name = 'nothing'"}).content.decode()
    assert "No traces match" in page and "clear all filters" in page


# --- bad filters ------------------------------------------------------------------------------


def test_bad_filter_on_a_full_page_shows_the_error_and_the_unfiltered_table(staff):
    _shop()
    page = staff.get(_url(), {"q": "latncy_ms > 5"}).content.decode()
    assert 'role="alert"' in page and "Column 1:" in page
    assert "did you mean &#x27;latency_ms&#x27;?" in page
    assert len(_names(page)) == 4


def test_bad_filter_over_htmx_keeps_the_table_and_url(staff):
    _shop()
    response = staff.get(_url(), {"q": "status_code = 'EROR'"}, headers=HTMX)
    body = response.content.decode()
    assert response["HX-Reswap"] == "none" and response["HX-Push-Url"] == "false"
    assert 'hx-swap-oob="true"' in body and "Column 15:" in body
    assert "<table" not in body
    assert "The table still shows the last result." in body


def test_good_filter_over_htmx_returns_results_and_clears_the_error(staff):
    _shop()
    response = staff.get(_url(), {"q": "status_code = 'ERROR'"}, headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body and "HX-Reswap" not in response
    assert _names(body) == ["error-root"]
    assert re.search(
        r'<div id="filter-error" class="filter-error" hx-swap-oob="true">\s*</div>', body
    )


def test_history_restore_gets_the_full_page(staff):
    _shop()
    response = staff.get(
        _url(), {"status": "ERROR"}, headers={**HTMX, "HX-History-Restore-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" in body and _names(body) == ["error-root"]


# --- pagination -------------------------------------------------------------------------------


def _next_href(page: str) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', page)
    return match.group(1).replace("&amp;", "&") if match else None


def _prev_href(page: str) -> str | None:
    match = re.search(r'rel="prev" href="([^"]+)"', page)
    return match.group(1).replace("&amp;", "&") if match else None


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


def test_pagination_forward_and_back_keeps_the_filters(staff):
    for index in range(20):
        factories.trace(start=T0 + timedelta(minutes=index), status_code="ERROR")
        factories.trace(start=T0 + timedelta(minutes=index, seconds=30))
    # 40 error spans (the root and the LLM span of 20 failed traces) among 120.
    first = staff.get(_url("spans"), {"status": "ERROR", "size": "25", "range": "all"})
    first = first.content.decode()
    href = _next_href(first)
    assert href and "status=ERROR" in href and "size=25" in href and "after=" in href
    assert _prev_href(first) is None
    second = staff.get(_url("spans") + href).content.decode()
    assert len(_keys(first)) == 25 and len(_keys(second)) == 15
    assert set(_keys(first)).isdisjoint(_keys(second))
    error_ids = set(Span.objects.filter(status_code="ERROR").values_list("span_id", flat=True))
    assert set(_keys(first)) | set(_keys(second)) == error_ids
    assert _next_href(second) is None
    back = staff.get(_url("spans") + _prev_href(second)).content.decode()
    assert _keys(back) == _keys(first)


def test_pagination_links_are_keyset_cursors_and_stale_cursors_fall_back(staff):
    for index in range(30):
        factories.trace(start=T0 + timedelta(minutes=index))
    first = staff.get(_url(), {"size": "25", "range": "all"}).content.decode()
    href = _next_href(first)
    assert href and "after=" in href and "size=25" in href and "page=" not in href
    second = staff.get(_url() + href).content.decode()
    assert len(_names(second)) == 5
    stale = staff.get(_url(), {"after": "garbage", "range": "all"}).content.decode()
    assert "out of date" in stale and len(_names(stale)) == 30


# --- live -------------------------------------------------------------------------------------


def test_live_poll_returns_only_new_rows_out_of_band(staff):
    factories.trace(start=T0)
    page = staff.get(_url(), {"live": "1", "range": "all"}).content.decode()
    poll = re.search(r'id="live-poller"[^>]*hx-get="([^"]+)"', page)
    assert poll, "the live poller is on the page"
    poll_url = _url() + poll.group(1).replace("&amp;", "&")
    quiet = staff.get(poll_url, headers=HTMX)
    assert quiet["HX-Reswap"] == "none" and "<tbody" not in quiet.content.decode()
    fresh = factories.trace(start=T0 + timedelta(minutes=1))
    Span.objects.filter(pk=fresh[0].pk).update(name="fresh-root")
    body = staff.get(poll_url, headers=HTMX).content.decode()
    assert 'hx-swap-oob="afterbegin:#rows"' in body and _names(body) == ["fresh-root"]
    assert 'id="live-poller"' in body and "newer=" in body


# --- XSS --------------------------------------------------------------------------------------


def test_span_content_is_escaped_everywhere(staff):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    records = [
        factories.span_record(
            name=payload,
            input_value=payload,
            output_value=payload,
            session_id=payload,
            attributes={"llm.model_name": payload},
        )
    ]
    spans = factories.ingest(records)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=spans[0].span_id,
                name=payload,
                annotator_kind="LLM",
                label=payload,
                explanation=payload,
            )
        ]
    )
    for tab in ("traces", "spans", "sessions"):
        page = staff.get(_url(tab)).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page, tab
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page, tab
    projects = staff.get(reverse("tracing:projects")).content.decode()
    assert "<script>alert" not in projects


# --- export and delete ------------------------------------------------------------------------


def _export_url(tab: str = "traces") -> str:
    return reverse("tracing:export", kwargs={"project": "default", "tab": tab})


def test_export_whole_filtered_result_as_csv_jsonl_and_parquet(staff):
    traces = _shop()
    error_ids = {s.span_id for s in traces["error"]}
    response = staff.get(_export_url(), {"status": "ERROR", "format": "csv"})
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["context.span_id"] for row in rows} == error_ids  # every span of the trace

    response = staff.get(_export_url("spans"), {"q": "span_kind = 'LLM'", "format": "jsonl"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["span_kind"] == "LLM" for line in lines)

    response = staff.get(_export_url("spans"), {"format": "parquet", "status": "ERROR"})
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.num_rows == 2

    assert staff.get(_export_url(), {"format": "xml"}).status_code == 400
    assert staff.get(_export_url(), {"format": "csv", "q": "bad ="}).status_code == 400


def test_export_selected_rows(staff):
    traces = _shop()
    response = staff.post(
        _export_url("spans"),
        {"selected": [traces["ok"][1].span_id, traces["old"][2].span_id], "format": "jsonl"},
    )
    ids = {
        json.loads(line)["context"]["span_id"]
        for line in b"".join(response.streaming_content).decode().splitlines()
    }
    assert ids == {traces["ok"][1].span_id, traces["old"][2].span_id}
    assert staff.post(_export_url("spans"), {"format": "csv"}).status_code == 400


def test_delete_asks_for_confirmation_then_deletes_the_selected_traces(staff):
    traces = _shop()
    trace_id = Trace.objects.get(pk=traces["error"][0].trace_id).trace_id
    url = reverse("tracing:delete", kwargs={"project": "default", "tab": "traces"})
    back = _url() + "?status=ERROR"
    confirm = staff.post(url, {"selected": [trace_id], "next": back})
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Delete 1 trace?" in page and "3 spans" in page
    assert Span.objects.count() == 12

    done = staff.post(url, {"selected": [trace_id], "next": back, "confirmed": "1"})
    assert done.status_code == 302 and done["Location"] == back
    assert Span.objects.count() == 9
    assert not Trace.objects.filter(trace_id=trace_id).exists()
    followed = staff.get(_url()).content.decode()
    assert "Deleted 1 trace (3 spans)." in followed
    assert "error-root" not in _names(followed)


def test_delete_refuses_offsite_next_and_empty_selection(staff):
    traces = _shop()
    url = reverse("tracing:delete", kwargs={"project": "default", "tab": "spans"})
    response = staff.post(
        url,
        {"selected": [traces["ok"][1].span_id], "confirmed": "1", "next": "https://evil.example/"},
    )
    assert response["Location"] == _url("spans")
    assert staff.post(url, {"confirmed": "1"}).status_code == 302
    assert Span.objects.count() == 11


def test_projects_range_select_shows_the_range_in_use(staff):
    factories.project("default")
    page = staff.get(reverse("tracing:projects")).content.decode()
    assert '<option value="7d" selected>Last 7 days</option>' in page
    page = staff.get(reverse("tracing:projects"), {"range": "1h"}).content.decode()
    assert '<option value="1h" selected>Last hour</option>' in page


def _delete_url(tab: str = "traces") -> str:
    return reverse("tracing:delete", kwargs={"project": "default", "tab": tab})


def _hidden(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)


def test_delete_all_matching_states_the_count_then_deletes_that_filtered_result(staff):
    traces = _shop()
    table = staff.get(_url(), {"status": "ERROR", "range": "24h", "sort": "cost"}).content.decode()
    link = re.search(r'href="([^"]*/traces/delete/[^"]*)">Delete all matching', table)
    assert link is not None
    confirm = staff.get(link.group(1).replace("&amp;", "&"))
    page = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Delete all 1 matching trace?" in page
    assert "1 trace</strong> with <strong data-delete-spans>3 spans" in page
    assert "status_code IN (&#x27;ERROR&#x27;)" in page
    assert Span.objects.count() == 12  # a confirmation deletes nothing

    fields = _hidden(page)
    assert ("status", "ERROR") in fields and ("range", "24h") in fields
    assert ("scope", "all") in fields and ("span_count", "3") in fields
    assert not any(name == "sort" for name, _ in fields)
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value.replace("&amp;", "&"))
    done = staff.post(_delete_url(), data)
    assert done.status_code == 302
    assert done["Location"] == _url() + "?status=ERROR&range=24h"
    assert set(Span.objects.values_list("span_id", flat=True)) == {
        s.span_id for name in ("ok", "evaluated", "old") for s in traces[name]
    }
    assert "Deleted 1 trace (3 spans)." in staff.get(_url()).content.decode()


def test_delete_all_matching_refuses_when_more_spans_match_than_were_confirmed(staff):
    traces = _shop()
    page = staff.get(_delete_url("spans"), {"kind": "LLM"}).content.decode()
    assert "Delete all 4 matching spans?" in page
    data = dict(_hidden(page))
    data["kind"] = "LLM"
    # Someone else's spans arrive between the confirmation and the click: they are kept.
    late = factories.trace(start=timezone.now())
    assert Span.objects.filter(span_kind="LLM").count() == 5
    assert staff.post(_delete_url("spans"), data).status_code == 302
    assert list(Span.objects.filter(span_kind="LLM")) == [late[2]]

    # A count lower than what matches now (as if more matched since): nothing is deleted.
    factories.trace(start=timezone.now())
    page = staff.get(_delete_url("spans"), {"kind": "LLM"}).content.decode()
    data = dict(_hidden(page)) | {"kind": "LLM", "span_count": "1"}
    again = staff.post(_delete_url("spans"), data)
    assert again.status_code == 200
    assert "More spans match than when you confirmed" in again.content.decode()
    assert Span.objects.filter(span_kind="LLM").count() == 2
    assert Span.objects.count() == 12 - 4 + 3 + 3
    assert Span.objects.filter(pk__in=[s.pk for s in traces["ok"]]).count() == 2  # not LLM


def test_delete_all_matching_with_a_bad_filter_deletes_nothing(staff):
    _shop()
    response = staff.get(_delete_url(), {"q": "latency_ms >"})
    assert response.status_code == 302
    assert Span.objects.count() == 12
    posted = staff.post(
        _delete_url(),
        {
            "scope": "all",
            "q": "latency_ms >",
            "confirmed": "1",
            "as_of": timezone.now().isoformat(),
            "span_count": "999",
        },
    )
    assert posted.status_code == 302 and Span.objects.count() == 12
    invalid_choice = staff.post(
        _delete_url(),
        {
            "scope": "all",
            "status": "NOPE",
            "confirmed": "1",
            "as_of": timezone.now().isoformat(),
            "span_count": "999",
        },
    )
    assert invalid_choice.status_code == 302 and Span.objects.count() == 12
    followed = staff.get(invalid_choice["Location"]).content.decode()
    assert "The filter is not valid, so nothing was deleted." in followed


def test_delete_all_matching_sessions_without_a_filter_says_it_is_everything(staff):
    factories.trace(start=T0, session_id="chat-1")
    factories.trace(start=T0, session_id="chat-2")
    factories.trace(start=T0)  # no session: not a row of the sessions table
    page = staff.get(_delete_url("sessions") + "?range=all").content.decode()
    assert "Delete all 2 matching sessions?" in page
    assert "No filter is set: this is every session in the project." in page
    data = dict(_hidden(page))
    assert staff.post(_delete_url("sessions"), data).status_code == 302
    assert Span.objects.count() == 3 and Span.objects.filter(session__isnull=True).count() == 3


def test_project_tabs_keep_the_time_range(staff):
    factories.trace(start=T0)

    def tab_links(html: str) -> dict[str, str]:
        nav = re.search(r'<nav class="tabs" id="project-tabs".*?</nav>', html, re.S)
        assert nav is not None
        return {
            label: href.replace("&amp;", "&")
            for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(0))
        }

    links = tab_links(staff.get(_url(), {"range": "7d", "status": "OK"}).content.decode())
    assert links["Spans"] == _url("spans") + "?range=7d"
    assert links["Sessions"] == _url("sessions") + "?range=7d"
    custom = {"range": "custom", "start": "2026-11-20T10:00", "end": "2026-11-21T10:00"}
    links = tab_links(staff.get(_url("spans"), custom).content.decode())
    assert (
        links["Traces"] == _url() + "?range=custom&start=2026-11-20T10%3A00&end=2026-11-21T10%3A00"
    )
    # After a filter change through htmx the tabs are swapped in place with the new range.
    partial = staff.get(_url(), {"range": "1h"}, headers=HTMX).content.decode()
    assert 'id="project-tabs" aria-label="default" hx-swap-oob="true"' in partial
    assert tab_links(partial)["Spans"] == _url("spans") + "?range=1h"
    assert tab_links(staff.get(_url()).content.decode())["Spans"] == _url("spans")
    assert tab_links(staff.get(_url(), {"range": "bogus"}).content.decode())["Spans"] == _url(
        "spans"
    )
