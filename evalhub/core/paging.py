"""Paging of every list: a page of rows with the cursor of the next one, the error for a cursor
this server did not hand out, and the one django-ninja pagination of the ``/v1`` lists.

A ``/v1`` list is declared with ``response=list[ItemOut]`` and ``@paged()`` (django-ninja's
``paginate`` with ``CursorPagination``);
its view returns a ``Pages`` (a function of ``cursor`` and ``limit`` that reads one ``Page``),
or a ``Page`` it read itself. The pagination reads ``?cursor=&limit=`` (``PageQuery``), answers
``{"data": [...], "next_cursor": ...}`` (Phoenix's shape) and turns an ``InvalidCursor`` into
the list's error response, so no view handles either.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final, Protocol, get_type_hints

from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.pagination import PaginationBase, paginate

from evalhub.core.fields import FieldInvalid

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000


class InvalidCursor(FieldInvalid):
    """A cursor that this server did not hand out (or one for another list or ordering)."""

    def __init__(self, message: str = "cursor is not valid") -> None:
        super().__init__(field="cursor", message=message)


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None

    def map[U](self, out: Callable[[T], U]) -> Page[U]:
        """The same page with each row passed through ``out`` (a row's API shape)."""
        return Page([out(item) for item in self.items], self.next_cursor)


class Pages(Protocol):
    """Reads the page after ``cursor`` (the first page for None), ``limit`` rows at most."""

    def __call__(self, *, cursor: str | None, limit: int) -> Page[Any]: ...


class ErrorOut(Schema):
    """The body of every error response of the API."""

    detail: str


class PageQuery(Schema):
    cursor: str | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


@cache
def page_query(default: int, maximum: int) -> type[PageQuery]:
    """``PageQuery`` with another default and maximum page size."""
    if (default, maximum) == (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE):
        return PageQuery
    return type(
        "PageQuery",
        (PageQuery,),
        {
            "__annotations__": {"limit": int},
            "limit": Field(default, ge=1, le=maximum),
            "__module__": __name__,
        },
    )


_MAX_ID_DIGITS: Final = 18
"""Longer digit strings are not row ids (a bigint has 19 digits at most)."""


def cursor_id(cursor: str | None) -> int | None:
    """The row id in a cursor that is one (None: the first page)."""
    if not cursor:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= _MAX_ID_DIGITS):
        raise InvalidCursor(f"cursor {cursor!r} is not valid")
    if int(cursor) < 1:
        raise InvalidCursor(f"cursor {cursor!r} is not valid")
    return int(cursor)


def page_from_id[M: Model](
    query: QuerySet[M],
    *,
    cursor: str | None,
    limit: int | None,
    descending: bool = True,
    field: str = "id",
) -> Page[M]:
    """A page of ``query`` (ordered by ``field``, an id: newest first, or oldest first with
    ``descending=False``) whose cursor is the id of the first row of the next page, so that it
    stays valid while rows are added. ``limit=None``: every row from the cursor on."""
    first = cursor_id(cursor)
    if first is not None:
        query = query.filter(**{f"{field}__{'lte' if descending else 'gte'}": first})
    if limit is None:
        return Page(list(query), None)
    rows = list(query[: limit + 1])
    more = len(rows) > limit
    return Page(rows[:limit], str(getattr(rows[limit], field)) if more else None)


def _text_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _text_cursor_read(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor(f"{cursor!r} is not valid") from None
    if "\x00" in value:  # no stored name holds one (PostgreSQL text cannot): not ours
        raise InvalidCursor(f"{cursor!r} is not valid")
    return value


def page_by_text[M: Model](
    query: QuerySet[M], *, cursor: str | None, limit: int, field: str
) -> Page[M]:
    """A page of ``query`` ordered by ``field`` (a unique text column, ascending: a list by
    name) whose cursor is that column's value in the first row of the next page, so that it
    stays valid while rows are added."""
    if cursor:
        query = query.filter(**{f"{field}__gte": _text_cursor_read(cursor)})
    rows = list(query.order_by(field)[: limit + 1])
    more = len(rows) > limit
    return Page(rows[:limit], _text_cursor(getattr(rows[limit], field)) if more else None)


def _newest_cursor(row: Any) -> str:
    raw = f"{row.created_at.isoformat()}|{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _newest_cursor_read(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pk = raw.rsplit("|", 1)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not (pk.isascii() and pk.isdigit()):
            raise ValueError(cursor)
        return when, int(pk)
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor(f"{cursor!r} is not valid") from None


def page_newest[M: Model](query: QuerySet[M], *, cursor: str | None, limit: int) -> Page[M]:
    """A page of a newest-first list (``-created_at, -id``) whose cursor is the last row's
    ``(created_at, id)``, so rows added meanwhile neither shift nor repeat rows."""
    if cursor:
        created, pk = _newest_cursor_read(cursor)
        query = query.filter(Q(created_at__lt=created) | Q(created_at=created, pk__lt=pk))
    rows = list(query[: limit + 1])
    if len(rows) > limit:
        return Page(rows[:limit], _newest_cursor(rows[limit - 1]))
    return Page(rows, None)


class CursorPagination(PaginationBase):
    """The pagination of every ``/v1`` list (see the module's doc).

    ``default``/``maximum``: the list's page sizes. A bad cursor is a 400 naming the field;
    ``invalid_status=422`` keeps the Phoenix-compatible lists' answer (422, the bare message).
    """

    class Output(Schema):
        data: list[Any]
        next_cursor: str | None

    items_attribute = "data"

    def __init__(
        self,
        *,
        default: int = DEFAULT_PAGE_SIZE,
        maximum: int = MAX_PAGE_SIZE,
        invalid_status: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.Input = page_query(default, maximum)  # type: ignore[assignment]  # per list, not per class
        self.invalid_status = invalid_status

    def paginate_queryset(
        self, queryset: Any, pagination: Any, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        page: Pages | Page[Any] = queryset  # what the view returned
        if not isinstance(page, Page):
            try:
                page = page(cursor=pagination.cursor, limit=pagination.limit)
            except InvalidCursor as exc:
                detail = exc.message if self.invalid_status == 422 else str(exc)
                raise HttpError(self.invalid_status, detail) from None
        return {"data": page.items, "next_cursor": page.next_cursor}


def paged[F: Callable[..., Any]](
    *,
    default: int = DEFAULT_PAGE_SIZE,
    maximum: int = MAX_PAGE_SIZE,
    invalid_status: int = 400,
) -> Callable[[F], F]:
    """``@paginate(CursorPagination, ...)`` for a view in a module with postponed annotations:
    the wrapper django-ninja reads the view's signature from lives in another module, so the
    view's annotations are resolved here first."""

    def decorate(view: F) -> F:
        view.__annotations__ = get_type_hints(view, include_extras=True)
        return paginate(
            CursorPagination, default=default, maximum=maximum, invalid_status=invalid_status
        )(view)

    return decorate
