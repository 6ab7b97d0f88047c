"""``GET /v1/evaluators/{evaluator}/calibration``, the Calibration page and Score trends."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Annotation
from tests import factories
from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db

URL = "/v1/evaluators/{}/calibration"


@pytest.fixture
def judged():  # type: ignore[no-untyped-def]
    judge("Correctness")
    labelled_spans([("good", "good", 1), ("bad", "good", 1), ("bad", "bad", 2)])


def test_the_calibration_of_each_version_with_flat_rows(client, auth, judged):
    body = client.get(URL.format("Correctness"), {"project": "default"}, headers=auth).json()
    assert (body["evaluator"], body["project"], body["pairs"]) == ("Correctness", "default", 3)
    assert [v["version"] for v in body["versions"]] == [2, 1]
    v1 = body["versions"][1]["overall"]
    assert v1["matrix"] == [[1, 0], [1, 0]] and v1["labels"] == ["good", "bad"]
    assert v1["accuracy"] == 0.5 and 0 < v1["accuracy_ci"]["low"] < 0.5
    assert {row["version"] for row in body["rows"]} == {1, 2}
    assert {row["label"] for row in body["label_rows"]} == {"good", "bad"}
    assert "root span" in body["rule"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"bucket": "fortnight"}, 422, "bucket"),
        ({"start": "yesterday"}, 422, "start"),
        ({"start": "2026-11-21T00:00:00", "end": "2026-11-20T00:00:00"}, 422, "end"),
        ({"project": "no such project"}, 404, "project"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, auth, judged, params, status, field):
    response = client.get(URL.format("Correctness"), params, headers=auth)
    assert response.status_code == status
    assert field in str(response.json()["detail"])


def test_an_unknown_evaluator_is_404_whatever_its_name(client, auth, db):
    for name in ("nobody", "'; drop table x; --", "a~sb"):
        response = client.get(URL.format(name), headers=auth)
        assert response.status_code == 404


def test_the_calibration_page_and_the_evaluator_page_fragment(client, django_user_model, judged):
    client.force_login(django_user_model.objects.create_user(username="ana", password="pw"))
    detail = client.get(reverse("evaluators:detail", args=["Correctness"])).content.decode()
    fragment_url = reverse("calibration:evaluator", args=["Correctness"])
    assert f'hx-get="{fragment_url}?fragment=1"' in detail
    html = client.get(fragment_url, {"fragment": "1", "project": "default"}).content.decode()
    assert "<html" not in html and 'data-version="2"' in html and 'data-version="1"' in html
    assert "Cohen" in html and "50.0 %" in html  # v1's accuracy
    page = client.get(fragment_url, {"bucket": "nonsense"})
    assert page.status_code == 200 and b"Version 2" in page.content


def test_score_trends_show_the_corrected_rate_beside_the_raw_one(client, django_user_model):
    rows = [("fail", "fail", 1)] * 4 + [("fail", "pass", 1), ("pass", "fail", 1)]
    labelled_spans(rows + [("pass", "pass", 1)] * 4, name="Safety")
    (span,) = labelled_spans([("x", "y", 1)], name="Uncalibrated")
    Annotation.objects.filter(span=span, annotator_kind="HUMAN").delete()  # nobody checked it
    client.force_login(django_user_model.objects.create_user(username="ana", password="pw"))
    url = reverse("tasks:trends", kwargs={"project": factories.project().name})
    html = client.get(url, {"range": "all"}).content.decode()
    assert 'data-calibration="Safety"' in html
    # raw 50 %, corrected (0.5 + 0.8 - 1) / 0.6 = 50 % too; sensitivity 80 %
    assert "Rogan" in html and "80.0 %" in html
    assert 'data-trend="Uncalibrated"' in html
    assert 'data-calibration="Uncalibrated"' not in html
