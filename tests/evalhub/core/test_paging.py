"""evalhub.core.paging: id cursors and the pagination every /v1 list answers with."""

import pytest
from ninja.errors import HttpError

from annotations.models import AnnotationConfig
from evalhub.core.paging import (
    CursorPagination,
    InvalidCursor,
    Page,
    PageQuery,
    cursor_id,
    page_by_text,
    page_from_id,
    page_query,
)


@pytest.mark.parametrize("cursor", ["abc", "0", "-1", "1" * 19, "١٢"])
def test_a_cursor_that_is_not_a_row_id_is_refused_naming_the_field(cursor):
    with pytest.raises(InvalidCursor) as refused:
        cursor_id(cursor)
    assert refused.value.field == "cursor"
    assert str(refused.value) == f"cursor: cursor {cursor!r} is not valid"


def test_no_cursor_is_the_first_page():
    assert cursor_id(None) is None and cursor_id("") is None
    assert cursor_id("42") == 42


@pytest.mark.django_db
def test_id_pages_hand_over_the_first_row_of_the_next_page_both_ways():
    configs = [AnnotationConfig.objects.create(name=f"c{i}", kind="FREEFORM") for i in range(5)]
    newest = AnnotationConfig.objects.order_by("-id")
    first = page_from_id(newest, cursor=None, limit=2)
    assert first.items == configs[:2:-1][:2] and first.next_cursor == str(configs[2].pk)
    second = page_from_id(newest, cursor=first.next_cursor, limit=2)
    assert second.items == [configs[2], configs[1]]
    last = page_from_id(newest, cursor=second.next_cursor, limit=2)
    assert last.items == [configs[0]] and last.next_cursor is None

    oldest = AnnotationConfig.objects.order_by("id")
    page = page_from_id(oldest, cursor=str(configs[3].pk), limit=5, descending=False)
    assert page.items == configs[3:] and page.next_cursor is None
    assert page_from_id(oldest, cursor=None, limit=None).items == configs


def test_page_query_keeps_a_lists_own_sizes():
    assert page_query(100, 1000) is PageQuery
    sized = page_query(10, 10_000)
    assert sized().limit == 10
    assert sized(limit=10_000).limit == 10_000
    with pytest.raises(ValueError, match="less than or equal to 10000"):
        sized(limit=10_001)


def _pages(*, cursor, limit):
    if cursor == "bad":
        raise InvalidCursor("cursor 'bad' is not valid")
    return Page(list(range(limit)), "next")


def test_the_pagination_answers_data_and_next_cursor():
    pagination = CursorPagination()
    answer = pagination.paginate_queryset(_pages, PageQuery(limit=3), request=None)
    assert answer == {"data": [0, 1, 2], "next_cursor": "next"}
    read = Page(["x"], None)
    assert pagination.paginate_queryset(read, PageQuery(), request=None) == {
        "data": ["x"],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    ("status", "detail"),
    [(400, "cursor: cursor 'bad' is not valid"), (422, "cursor 'bad' is not valid")],
)
def test_a_bad_cursor_is_the_lists_error_response(status, detail):
    pagination = CursorPagination(invalid_status=status)
    with pytest.raises(HttpError) as refused:
        pagination.paginate_queryset(_pages, PageQuery(cursor="bad"), request=None)
    assert refused.value.status_code == status and str(refused.value) == detail


@pytest.mark.django_db
def test_name_pages_hand_over_the_name_of_the_next_pages_first_row():
    for name in ["b", "a", "é", "d c", "c"]:
        AnnotationConfig.objects.create(name=name, kind="FREEFORM")
    configs = AnnotationConfig.objects.all()
    first = page_by_text(configs, cursor=None, limit=2, field="name")
    assert [c.name for c in first.items] == ["a", "b"] and first.next_cursor
    second = page_by_text(configs, cursor=first.next_cursor, limit=2, field="name")
    assert [c.name for c in second.items] == ["c", "d c"]
    last = page_by_text(configs, cursor=second.next_cursor, limit=2, field="name")
    assert [c.name for c in last.items] == ["é"] and last.next_cursor is None


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["%%%", "a b", "/w==", "AA", "_w"])
def test_a_name_cursor_this_server_did_not_hand_out_is_refused(cursor):
    # "AA" decodes to a NUL, "_w" to a byte that is not UTF-8.
    with pytest.raises(InvalidCursor) as refused:
        page_by_text(AnnotationConfig.objects.all(), cursor=cursor, limit=2, field="name")
    assert refused.value.field == "cursor"
