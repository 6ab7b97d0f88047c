"""EvalHub's 404 and 500 pages: the navigation, what was searched, and ways back."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.test import RequestFactory

from evalhub.site.errors import handler500
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    user = django_user_model.objects.create_user(username="lead", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_an_unknown_trace_names_the_id_and_the_project_with_links_back(client, signed_in):
    factories.trace(project="shop")
    response = client.get("/projects/shop/traces/deadbeef0000/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'aria-label="Main"' in html  # the navigation bar
    assert "No trace" in html and "deadbeef0000" in html and "in shop" in html
    assert 'href="/projects/shop/traces/"' in html  # back to the project's traces
    assert 'href="/projects/"' in html


def test_a_trace_id_stored_in_another_project_links_there(client, signed_in):
    root = factories.trace(project="shop")[0]
    factories.project("other")
    response = client.get(f"/projects/other/traces/{root.trace.trace_id}/")
    assert response.status_code == 404
    assert f'href="/projects/shop/traces/{root.trace.trace_id}/"' in response.content.decode()


def test_an_unknown_project_and_an_unknown_page(client, signed_in):
    html = client.get("/projects/no-such-project/traces/").content.decode()
    assert "No project" in html and "no-such-project" in html
    hostile = client.get("/nothing/<script>alert(1)</script>/")
    assert hostile.status_code == 404
    assert b"<script>alert(1)</script>" not in hostile.content
    assert b"Page not found" in hostile.content


def test_the_500_page_has_the_navigation_and_survives_a_broken_context(signed_in, monkeypatch):
    request = RequestFactory().get("/projects/")
    request.user = signed_in
    response = handler500(request)
    assert response.status_code == 500
    assert b'aria-label="Main"' in response.content
    assert b"Something went wrong on our side" in response.content

    def broken(request):  # type: ignore[no-untyped-def]
        raise DatabaseError("the database is down")

    monkeypatch.setattr("evalhub.site.navigation.request_principal", broken)
    response = handler500(request)
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b'aria-label="Main"' not in response.content


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0][0].endswith("favicon.svg")
