"""Experiment pages: a refused prompt-experiment form stores nothing and says why, versions
diff and download, the experiment page's runs and aggregates."""

from __future__ import annotations

import pytest

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent, dataset_examples_remove, version_examples
from evalhub.experiments.models import Experiment, Prompt
from evalhub.experiments.services import RunInput, evaluation_upsert, experiment_create, run_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploaded():
    rows = [UploadRow(ExampleContent({"question": f"q{i}"}, {"answer": f"a{i}"})) for i in range(3)]
    return dataset_upload(name="quiz <b>", rows=rows)


def test_a_refused_prompt_experiment_says_why_and_stores_nothing(admin_client, uploaded, provider):
    url = f"/datasets/{uploaded.dataset.pk}/experiments/new/"
    assert admin_client.get(url).status_code == 200
    base = {
        "version": uploaded.version.pk,
        "provider": provider.pk,
        "repetitions": 1,
        "concurrency": 4,
    }
    empty = admin_client.post(url, base)
    assert empty.status_code == 400
    assert "Write a template, or choose a prompt." in empty.content.decode()
    bad_mapping = admin_client.post(
        url,
        {
            **base,
            "prompt_name": "p",
            "template": "{{question}}",
            "variables": "question = answer.x",
        },
    )
    assert bad_mapping.status_code == 400
    assert "must start with input, expected or metadata" in bad_mapping.content.decode()
    no_equals = admin_client.post(
        url, {**base, "prompt_name": "p", "template": "{{q}}", "variables": "just text"}
    )
    assert "line 1: write it as variable = input.key" in no_equals.content.decode()
    assert not Experiment.objects.exists()
    # The bad mapping was refused before the new prompt was kept.
    assert not Prompt.objects.exists()


def test_versions_diff_and_download(admin_client, uploaded):
    first = uploaded.version
    example = version_examples(version=first).first().example_id
    second = dataset_examples_remove(dataset=uploaded.dataset, example_ids=[example])
    page = admin_client.get(f"/datasets/{uploaded.dataset.pk}/experiments/")
    assert page.status_code == 200
    assert "quiz &lt;b&gt;" in page.content.decode()
    diff = admin_client.get(f"/datasets/{uploaded.dataset.pk}/versions/diff/")
    assert diff.context["a"] == first and diff.context["b"] == second
    assert "1 removed" in diff.content.decode()
    csv_text = admin_client.get(
        f"/datasets/{uploaded.dataset.pk}/versions/{first.pk}/download/?format=csv"
    ).content.decode()
    assert csv_text.splitlines()[0] == "example_id,input,output,metadata,span_id"
    assert len(csv_text.splitlines()) == 4
    assert (
        admin_client.get(f"/datasets/{uploaded.dataset.pk}/versions/999/download/").status_code
        == 404
    )


def test_the_experiment_page(admin_client, uploaded):
    experiment = experiment_create(dataset=uploaded.dataset, name="baseline")
    ids = [r.example_id for r in version_examples(version=uploaded.version)]
    good = run_record(experiment=experiment, run=RunInput(example_id=ids[0], output="<i>a0</i>"))
    run_record(experiment=experiment, run=RunInput(example_id=ids[1], error="Boom: it broke"))
    evaluation_upsert(run=good, name="exact", result={"score": 1.0, "label": "right"})
    page = admin_client.get(f"/experiments/{experiment.pk}/")
    body = page.content.decode()
    assert page.context["summary"].runs == 2 and page.context["summary"].errors == 1
    assert "&lt;i&gt;a0&lt;/i&gt;" in body  # outputs are escaped
    assert "Boom: it broke" in body
    assert "mean 1.000" in body and "right: 1" in body
    assert admin_client.get("/experiments/424242/").status_code == 404


def test_the_links_the_phoenix_client_prints(admin_client, uploaded):
    from annotations.datasets.api import dataset_global_id

    experiment = experiment_create(dataset=uploaded.dataset)
    gid = dataset_global_id(uploaded.dataset.pk)
    listing = admin_client.get(f"/datasets/{gid}/experiments")
    assert listing.status_code == 302
    assert listing["Location"] == f"/datasets/{uploaded.dataset.pk}/experiments/"
    one = admin_client.get(f"/datasets/{gid}/compare", {"experimentId": experiment.pk})
    assert one["Location"] == f"/experiments/{experiment.pk}/"
    assert admin_client.get("/datasets/RGF0YXNldDo5OTk5/experiments").status_code == 404
    assert admin_client.get(f"/datasets/{'9' * 40}/experiments").status_code == 404
