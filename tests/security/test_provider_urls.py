"""Provider URLs (issue 11, point 8): a stored key is never sent to a new address without being
entered again, and no request goes to a denied network or name (``EVALHUB_OUTBOUND_DENY``:
link-local and cloud metadata by default) — checked when a URL is saved and again at every
connection, with the host name resolved then, so DNS rebinding is caught. Loopback stays
allowed (the fake OpenAI server of these tests listens on 127.0.0.1)."""

from __future__ import annotations

import html
import os
import socket
import subprocess
import sys

import pytest

from evalhub.core.outbound import OutboundDenied, outbound_http_client, outbound_url_check
from evalhub.providers.models import Provider
from evalhub.providers.services import provider_create
from tests.evalhub.fake_openai import VALID_KEY, FakeOpenAI

pytestmark = pytest.mark.django_db

DENIED = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is in a denied network (169.254.0.0/16"),
    ("http://169.254.170.2/v1", "169.254.170.2 is in a denied network (169.254.0.0/16"),
    ("http://[fe80::1]/v1", "fe80::1 is in a denied network (fe80::/10"),
    ("http://[::ffff:169.254.169.254]/v1", "::ffff:169.254.169.254 is in a denied network (169.254.0.0/16"),
    ("http://[fd00:ec2::254]/v1", "fd00:ec2::254 is in a denied network (fd00:ec2::254/128"),
    ("http://100.100.100.200/v1", "100.100.100.200 is in a denied network (100.100.100.200/32"),
    ("http://metadata.google.internal/computeMetadata/v1", "metadata.google.internal is a denied host name"),
    ("https://METADATA.Google.Internal./v1", "metadata.google.internal. is a denied host name"),
]  # fmt: skip


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("staff", password="x", is_staff=True)


@pytest.fixture
def staff_client(client, staff):  # type: ignore[no-untyped-def]
    client.force_login(staff)
    return client


@pytest.fixture
def provider(fake_openai: FakeOpenAI) -> Provider:
    return provider_create(
        name="fake",
        kind="compatible",
        base_url=fake_openai.base_url,
        api_key=VALID_KEY,
        default_model="judge-small",
        requests_per_minute=0,
        timeout_seconds=5,
    )


def _form(**fields: object) -> dict[str, object]:
    return {
        "name": "fake",
        "kind": "compatible",
        "base_url": "",
        "api_key": "",
        "default_model": "judge-small",
        "max_concurrency": 2,
        "requests_per_minute": 0,
        "timeout_seconds": 5,
        **fields,
    }


# --- the deny-list, when a URL is saved --------------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), DENIED, ids=[u for u, _ in DENIED])
def test_a_denied_url_is_refused_by_the_api_with_nothing_written(client, auth, url, reason):
    response = client.post(
        "/v1/providers",
        {"name": "meta", "kind": "compatible", "base_url": url, "default_model": "m", "api_key": "sk-x"},
        content_type="application/json",
        headers=auth,
    )  # fmt: skip
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"base_url: {reason}")
    assert Provider.objects.count() == 0


def test_a_denied_url_is_a_field_error_on_the_page(staff_client):
    response = staff_client.post(
        "/settings/providers/",
        _form(base_url="http://169.254.169.254/latest/", api_key="sk-x"),
    )
    assert response.status_code == 200
    assert response.context["form"].errors["base_url"] == [
        "169.254.169.254 is in a denied network (169.254.0.0/16, EVALHUB_OUTBOUND_DENY)"
    ]
    assert "169.254.169.254 is in a denied network" in html.unescape(response.content.decode())
    assert Provider.objects.count() == 0


def test_a_name_that_resolves_to_a_denied_address_is_refused(settings):
    # localhost resolves through /etc/hosts; deny its addresses, not its name.
    settings.EVALHUB_OUTBOUND_DENY = ["127.0.0.0/8", "::1/128"]
    with pytest.raises(OutboundDenied) as refused:
        outbound_url_check("http://localhost:8000/v1", field="base_url")
    assert refused.value.field == "base_url"
    assert "localhost (127.0.0.1) is in a denied network (127.0.0.0/8" in str(refused.value) or (
        "localhost (::1) is in a denied network (::1/128" in str(refused.value)
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:11434/v1",
        "http://[::1]:8000/v1",
        "http://10.1.2.3/v1",
        "https://api.openai.com/v1",
        "https://resolves-nowhere.invalid/v1",  # checked again when a request is made
    ],
)
def test_loopback_private_and_public_addresses_stay_allowed_by_default(url):
    outbound_url_check(url, field="base_url")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "base_url: must start with http:// or https://"),
        ("file:///etc/passwd", "base_url: must start with http:// or https://"),
        ("http:///v1", "base_url: has no host name"),
        ("http://example.com:99999/", "base_url: not a valid URL"),
    ],
)
def test_what_is_not_an_http_url_is_refused(url, message):
    with pytest.raises(OutboundDenied, match=message.replace("/", ".")):
        outbound_url_check(url, field="base_url")


def test_a_bad_deny_list_stops_start_up():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "EVALHUB_OUTBOUND_DENY": "169.254.0.0/16,not a network!"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert (
        "EVALHUB_OUTBOUND_DENY: 'not a network!' is neither a network (CIDR) nor a host name"
        in result.stderr
    )


# --- a new address needs the key again ---------------------------------------------------------


def test_changing_the_url_through_the_api_needs_the_key_again(client, auth, provider):
    url = f"/v1/providers/{provider.pk}"
    moved = client.patch(
        url, {"base_url": "http://127.0.0.2:9/v1"}, content_type="application/json", headers=auth
    )
    assert moved.status_code == 422
    assert moved.json()["detail"] == (
        "api_key: enter the API key again to change the base URL or kind: the stored key is "
        "never sent to a new address"
    )
    provider.refresh_from_db()
    assert provider.base_url.startswith("http://127.0.0.1:")
    # The same URL (a trailing slash aside), or other fields, need no key.
    same = client.patch(
        url,
        {"base_url": provider.base_url + "/", "default_model": "judge-large"},
        content_type="application/json",
        headers=auth,
    )
    assert same.status_code == 200, same.content
    # With the key, the move is saved.
    with_key = client.patch(
        url,
        {"base_url": "http://127.0.0.2:9/v1", "api_key": "sk-new-key-000000001"},
        content_type="application/json",
        headers=auth,
    )
    assert with_key.status_code == 200, with_key.content
    assert with_key.json()["base_url"] == "http://127.0.0.2:9/v1"
    assert with_key.json()["api_key_hint"].endswith("0001")


def test_changing_the_kind_needs_the_key_again(client, auth, provider):
    moved = client.patch(
        f"/v1/providers/{provider.pk}",
        {"kind": "azure", "api_version": "2024-10-21"},
        content_type="application/json",
        headers=auth,
    )
    assert moved.status_code == 422
    assert moved.json()["detail"].startswith("api_key: enter the API key again")


def test_changing_the_url_on_the_page_needs_the_key_again(staff_client, provider):
    response = staff_client.post(
        f"/settings/providers/{provider.pk}/",
        _form(base_url="http://127.0.0.2:9/v1", default_model="judge-large"),
    )
    assert response.status_code == 200
    assert response.context["form"].errors["api_key"] == [
        "enter the API key again to change the base URL or kind: the stored key is never sent "
        "to a new address"
    ]
    provider.refresh_from_db()
    assert provider.base_url.startswith("http://127.0.0.1:")
    assert provider.default_model == "judge-small"  # nothing of the form was saved
    saved = staff_client.post(
        f"/settings/providers/{provider.pk}/",
        _form(base_url="http://127.0.0.2:9/v1", api_key="sk-new-key-000000002"),
    )
    assert saved.status_code == 302
    provider.refresh_from_db()
    assert (provider.base_url, provider.api_key_hint[-4:]) == ("http://127.0.0.2:9/v1", "0002")


def test_a_provider_without_a_key_may_move(client, auth, fake_openai):
    keyless = provider_create(
        name="local", kind="compatible", base_url=fake_openai.base_url, default_model="m"
    )
    moved = client.patch(
        f"/v1/providers/{keyless.pk}",
        {"base_url": "http://127.0.0.2:9/v1"},
        content_type="application/json",
        headers=auth,
    )
    assert moved.status_code == 200, moved.content


# --- the deny-list, when a request is made -----------------------------------------------------


def test_loopback_providers_still_answer(staff_client, provider, fake_openai):
    fake_openai.reply_with(content="pong")
    page = staff_client.post(f"/settings/providers/{provider.pk}/test/").content.decode()
    assert "judge-small answered “pong”" in page


def test_a_stored_url_now_denied_is_refused_before_anything_is_sent(
    client,
    auth,
    provider,
    fake_openai,
    settings,
):
    """The same check at connection time: a URL saved before its network was denied."""
    settings.EVALHUB_OUTBOUND_DENY = ["127.0.0.0/8"]
    answer = client.post(f"/v1/providers/{provider.pk}/test", headers=auth).json()
    assert answer["ok"] is False
    assert answer["error"] == (
        "the provider's address is refused: 127.0.0.1 is in a denied network (127.0.0.0/8, "
        "EVALHUB_OUTBOUND_DENY)"
    )
    assert fake_openai.requests == []  # the key never left


def test_dns_rebinding_to_a_denied_address_is_caught_at_request_time(
    client,
    auth,
    fake_openai,
    monkeypatch,
):
    """A name that resolves to the fake server when saved, then (an attacker's DNS with a short
    TTL) to the metadata address: the connection checks the address it connects to."""
    port = fake_openai.base_url.split(":")[2].split("/")[0]
    real_getaddrinfo = socket.getaddrinfo
    answers = {"n": 0}

    def rebinding(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "rebind.evalhub.test":
            return real_getaddrinfo(host, *args, **kwargs)
        answers["n"] += 1
        address = "127.0.0.1" if answers["n"] == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    created = client.post(
        "/v1/providers",
        {"name": "rebind", "kind": "compatible", "base_url": f"http://rebind.evalhub.test:{port}/v1",
         "default_model": "judge-small", "api_key": VALID_KEY, "timeout_seconds": 5},
        content_type="application/json",
        headers=auth,
    )  # fmt: skip
    assert created.status_code == 201, created.content  # it resolved to loopback then
    answer = client.post(f"/v1/providers/{created.json()['id']}/test", headers=auth).json()
    assert answer["error"] == (
        "the provider's address is refused: rebind.evalhub.test (169.254.169.254) is in a "
        "denied network (169.254.0.0/16, EVALHUB_OUTBOUND_DENY)"
    )
    assert answers["n"] == 2 and fake_openai.requests == []


def test_the_outbound_client_checks_every_connection(fake_openai):
    """What webhooks will use: any request through it goes only to allowed addresses."""
    with outbound_http_client() as http:
        with pytest.raises(OutboundDenied, match=r"169\.254\.169\.254 is in a denied network"):
            http.get("http://169.254.169.254/latest/meta-data/")
        answer = http.post(
            fake_openai.base_url + "/chat/completions",
            json={"model": "judge-small", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {VALID_KEY}"},
        )
    assert answer.status_code == 200
    assert len(fake_openai.requests) == 1
