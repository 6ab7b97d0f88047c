"""Issue 11, point 2: a signed-in browser's unsafe calls to /v1 need Django's CSRF token; API
keys do not; JSON routes refuse other body types. In Chromium: a hostile page on another site
and one on the same site (another port) try a ``text/plain`` fetch and form posts with the
logged-in admin's cookie, and nothing happens; the app's own calls with the token work."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import Client

from evalhub.identity.services import api_key_create
from tests import factories
from tracing.models import Project


@pytest.fixture
def admin(db, django_user_model):
    return django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)


@pytest.fixture
def browser_like(admin) -> Client:
    """A signed-in client that checks CSRF like a browser's requests are checked."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    client.get("/projects/")  # the page sets the csrftoken cookie
    return client


def test_a_cookie_post_without_the_token_is_refused_and_writes_nothing(browser_like):
    response = browser_like.post(
        "/v1/projects", json.dumps({"name": "evil"}), content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed (CSRF token missing")
    assert "X-CSRFToken" in response.json()["detail"]
    assert not Project.objects.filter(name="evil").exists()


def test_a_cookie_post_with_the_token_works(browser_like):
    token = browser_like.cookies["csrftoken"].value
    response = browser_like.post(
        "/v1/projects",
        json.dumps({"name": "mine"}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    deleted = browser_like.delete("/v1/projects/mine", headers={"X-CSRFToken": token})
    assert deleted.status_code == 204


def test_reads_need_no_token(browser_like):
    assert browser_like.get("/v1/projects").status_code == 200


def test_an_api_key_needs_no_token(admin):
    raw = api_key_create(name="ci", scope="write", user=admin)[1]
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/v1/projects",
        json.dumps({"name": "ci"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_json_routes_refuse_other_body_types_with_415(admin, content_type):
    raw = api_key_create(name="ci", scope="write", user=admin)[1]
    client = Client()
    response = client.post(
        "/v1/projects",
        json.dumps({"name": "plain"}),
        content_type=content_type,
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 415
    assert response.json()["detail"].startswith(f"Content-Type {content_type.split(';')[0]!r}")
    assert not Project.objects.filter(name="plain").exists()


def test_json_with_a_charset_is_fine(admin):
    raw = api_key_create(name="ci", scope="write", user=admin)[1]
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    response = client.post(
        "/v1/projects",
        json.dumps({"name": "ok"}),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200


# --- in Chromium --------------------------------------------------------------------------------


HOSTILE_PAGE = """<!doctype html>
<html><body>
<form id="plain" method="post" action="{api}/v1/projects" enctype="text/plain">
  <input name='{{"name": "evil-form", "x": "' value='"}}'>
</form>
<form id="page" method="post" action="{api}/settings/api-keys/">
  <input name="name" value="stolen"><input name="scope" value="admin">
</form>
<script>
window.attack = async () => {{
  const results = {{}};
  for (const [name, init] of Object.entries({{
    plainFetch: {{method: "POST", credentials: "include", headers: {{"Content-Type": "text/plain"}},
                 body: JSON.stringify({{name: "evil-fetch"}})}},
    deleteFetch: {{method: "DELETE", credentials: "include"}},
  }})) {{
    const url = name === "deleteFetch" ? "{api}/v1/projects/demo" : "{api}/v1/projects";
    try {{ const r = await fetch(url, init); results[name] = r.status; }}
    catch (e) {{ results[name] = "blocked"; }}
  }}
  return results;
}};
</script>
</body></html>
"""


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A static web server on another port, serving the files put in ``tmp_path``."""

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("site", ["another site", "the same site"])
def test_a_hostile_page_cannot_act_with_the_admins_cookie(
    logged_in_page, live_server, hostile_server, site, caplog
):
    from evalhub.identity.models import ApiKey

    factories.project("demo")
    directory, port = hostile_server
    # The app runs on localhost: 127.0.0.1 is another site; localhost on another port is the
    # same site (cookies with SameSite=Lax go along), only another origin.
    host = "127.0.0.1" if site == "another site" else "localhost"
    (directory / "attack.html").write_text(HOSTILE_PAGE.format(api=live_server.url))
    page = logged_in_page
    page.goto(f"http://{host}:{port}/attack.html")

    with caplog.at_level(logging.WARNING, logger="django.request"):
        results = page.evaluate("window.attack()")
    assert results["plainFetch"] == "blocked"  # the page cannot read the answer…
    assert results["deleteFetch"] == "blocked"  # …and a DELETE needs CORS, never offered
    # …but the POST was sent (a "simple" request needs no CORS preflight) and refused: without
    # the CSRF token (same site: the cookie went along) or without a session (another site).
    refused = {r.getMessage() for r in caplog.records if r.name == "django.request"}
    assert refused & {"Forbidden: /v1/projects", "Unauthorized: /v1/projects"}, refused
    for form in ("#plain", "#page"):
        page.goto(f"http://{host}:{port}/attack.html")
        with page.expect_navigation() as navigation:
            page.eval_on_selector(form, "f => f.submit()")
        assert navigation.value is not None and navigation.value.status in (401, 403)

    assert set(Project.objects.values_list("name", flat=True)) == {"demo"}
    assert not ApiKey.objects.filter(name="stolen").exists()


def test_the_apps_own_pages_call_the_api_with_the_token(logged_in_page):
    page = logged_in_page
    page.goto("/projects/")
    status = page.evaluate(
        """async () => {
          const token = JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"];
          const r = await fetch("/v1/projects", {method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRFToken": token},
            body: JSON.stringify({name: "from-the-page"})});
          return r.status;
        }"""
    )
    assert status == 200
    assert Project.objects.filter(name="from-the-page").exists()
    without = page.evaluate(
        """async () => (await fetch("/v1/projects", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({name: "no-token"})})).status"""
    )
    assert without == 403
