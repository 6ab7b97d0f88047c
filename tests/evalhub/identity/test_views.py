"""Settings → API keys and Settings → Users and roles, and the one-time set-password link."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from evalhub.identity.models import ApiKey
from evalhub.identity.roles import is_annotator
from evalhub.identity.selectors import api_key_authenticate
from evalhub.identity.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_user("boss", is_staff=True)


@pytest.fixture
def mia(django_user_model):
    return django_user_model.objects.create_user("mia")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- API keys ---------------------------------------------------------------------------------


def test_a_member_creates_a_key_sees_it_once_and_revokes_it(mia, boss):
    client = signed_in(mia)
    page = client.get("/settings/api-keys/").content.decode()
    assert "These are your keys" in page
    assert '<option value="admin"' not in page  # up to write for a member
    assert 'name="owner"' not in page
    assert '<option value="ingest" selected>' in page  # the default: exporter keys

    created = client.post(
        "/settings/api-keys/", {"name": "laptop", "scope": "write", "expires_on": "2099-03-04"}
    )
    assert created.status_code == 201
    html = created.content.decode()
    raw = re.search(r'<code class="secret" id="new-key">([^<]+)</code>', html).group(1)
    key = api_key_authenticate(raw)
    assert key.user == mia and key.scope == "write" and key.created_by == mia
    assert key.expires_at.isoformat().startswith("2099-03-04T00:00:00")
    assert "Copy it now: it is not shown again" in html

    listing = client.get("/settings/api-keys/").content.decode()
    assert raw not in listing  # shown once
    assert key.prefix in listing and "laptop" in listing and "2099-03-04" in listing

    revoked = client.post(f"/settings/api-keys/{key.pk}/revoke/", follow=True)
    assert f"Revoked the key laptop ({key.prefix}…)" in revoked.content.decode()
    assert api_key_authenticate(raw) is None


def test_members_see_and_revoke_only_their_own_keys(mia, boss):
    others = api_key_create(name="boss's", scope="admin", user=boss)[0]
    client = signed_in(mia)
    assert "boss&#x27;s" not in client.get("/settings/api-keys/").content.decode()
    assert client.post(f"/settings/api-keys/{others.pk}/revoke/").status_code == 404
    others.refresh_from_db()
    assert others.revoked_at is None
    assert client.post("/settings/api-keys/", {"name": "x", "scope": "admin"}).status_code == 400


def test_an_admin_makes_keys_for_others_and_for_no_one(boss, mia):
    client = signed_in(boss)
    page = client.get("/settings/api-keys/").content.decode()
    assert "As an admin you see everyone" in page
    made = client.post("/settings/api-keys/", {"name": "ci", "scope": "admin", "owner": ""})
    assert made.status_code == 201
    ci = ApiKey.objects.get(name="ci")
    assert ci.user is None and ci.scope == "admin"
    too_much = client.post(
        "/settings/api-keys/", {"name": "m", "scope": "admin", "owner": str(mia.pk)}
    )
    assert too_much.status_code == 400
    assert "a member may have keys up to write scope" in too_much.content.decode()
    past = client.post(
        "/settings/api-keys/", {"name": "old", "scope": "read", "expires_on": "2001-01-01"}
    )
    assert "Choose a day after today." in past.content.decode()


def test_annotators_have_no_keys_page(django_user_model):
    from evalhub.identity.roles import annotator_role_grant

    ann = django_user_model.objects.create_user("ann")
    annotator_role_grant(user=ann)
    assert signed_in(ann).get("/settings/api-keys/").status_code == 403


def test_settings_tabs_show_what_one_may_open(mia, boss):
    member_page = signed_in(mia).get("/settings/api-keys/").content.decode()
    assert "API keys" in member_page and "Users and roles" not in member_page
    assert "AI providers" not in member_page
    admin_page = signed_in(boss).get("/settings/api-keys/").content.decode()
    assert "Users and roles" in admin_page and "AI providers" in admin_page
    # The main navigation's Settings entry opens the first settings page one may see.
    assert re.search(r'href="/settings/annotation-configs/"[^>]*>Settings</a>', member_page)


# --- users and roles ---------------------------------------------------------------------------


def test_an_admin_invites_someone_who_sets_a_password_once(boss):
    client = signed_in(boss)
    created = client.post("/settings/users/", {"username": "ann", "role": "annotator"})
    assert created.status_code == 201
    link = re.search(r'id="set-password-link">([^<]+)</code>', created.content.decode()).group(1)
    ann = get_user_model().objects.get(username="ann")
    assert is_annotator(ann) and not ann.has_usable_password()

    visitor = Client()
    form_page = visitor.get(link, follow=True)
    assert "Choose a password" in form_page.content.decode()
    url = form_page.redirect_chain[-1][0]
    done = visitor.post(
        url,
        {"new_password1": "a long enough secret", "new_password2": "a long enough secret"},
        follow=True,
    )
    assert "Your password is set: log in with it." in done.content.decode()
    assert (
        visitor.post("/login/", {"username": "ann", "password": "a long enough secret"}).status_code
        == 302
    )
    again = Client().get(link, follow=True)
    assert "This link does not work" in again.content.decode()


def test_create_with_a_password_and_the_fields_are_checked(boss):
    client = signed_in(boss)
    made = client.post(
        "/settings/users/",
        {"username": "mo", "role": "admin", "password": "another long secret"},
    )
    assert made.status_code == 201
    mo = get_user_model().objects.get(username="mo")
    assert mo.is_staff and mo.check_password("another long secret")
    taken = client.post("/settings/users/", {"username": "MO", "role": "member"})
    assert taken.status_code == 400 and "&#x27;MO&#x27; is taken" in taken.content.decode()
    short = client.post("/settings/users/", {"username": "x", "role": "member", "password": "1"})
    assert "This password is too short" in short.content.decode()


def test_roles_change_and_the_last_admin_stays(boss, mia):
    client = signed_in(boss)
    promoted = client.post(f"/settings/users/{mia.pk}/", {"action": "role", "role": "admin"})
    assert promoted.status_code == 302
    mia.refresh_from_db()
    assert mia.is_staff
    own = client.post(f"/settings/users/{boss.pk}/", {"action": "role", "role": "member"})
    assert own.status_code == 400
    assert "You cannot take your own admin role" in own.content.decode()
    # mia demotes boss; then mia is the last admin and cannot be demoted by anyone.
    signed_in(mia).post(f"/settings/users/{boss.pk}/", {"action": "role", "role": "member"})
    boss.refresh_from_db()
    assert not boss.is_staff
    from evalhub.identity.services import UserInvalid, user_role_change

    with pytest.raises(UserInvalid, match="at least one active admin"):
        user_role_change(user=mia, role="member", actor=boss)


def test_deactivate_and_reactivate(boss, mia):
    key_raw = api_key_create(name="mia's", scope="read", user=mia)[1]
    mias_browser = signed_in(mia)
    client = signed_in(boss)
    assert client.post(f"/settings/users/{boss.pk}/", {"action": "deactivate"}).status_code == 400
    done = client.post(f"/settings/users/{mia.pk}/", {"action": "deactivate"}, follow=True)
    assert "Deactivated mia." in done.content.decode()
    assert mias_browser.get("/projects/").status_code == 302  # logged out
    assert (
        Client().get("/v1/projects", headers={"Authorization": f"Bearer {key_raw}"}).status_code
        == 401
    )
    client.post(f"/settings/users/{mia.pk}/", {"action": "reactivate"})
    mia.refresh_from_db()
    assert mia.is_active


def test_members_cannot_manage_users(mia, boss):
    client = signed_in(mia)
    assert client.get("/settings/users/").status_code == 403
    assert client.post(f"/settings/users/{boss.pk}/", {"action": "deactivate"}).status_code == 403
    boss.refresh_from_db()
    assert boss.is_active
