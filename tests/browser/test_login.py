import pytest

from tests.browser.fixtures import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_form_rejects_a_wrong_password_then_logs_in(page, user):
    page.goto("/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login/" not in page.url
    assert page.get_by_role("button", name="Log out").is_visible()
