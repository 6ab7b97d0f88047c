"""Annotation pages through Django's test client: Settings → Annotation configs, the annotate
form on the trace and session pages, a project's Annotations tab and its agreement view."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import (
    Annotation,
    AnnotationConfig,
    AnnotationSource,
    AnnotatorKind,
    ProjectAnnotationConfig,
)
from annotations.rubrics.services import annotation_config_create, project_annotation_config_enable
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
CONFIGS_URL = "/settings/annotation-configs/"
NEW_URL = "/settings/annotation-configs/new/"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw")


@pytest.fixture
def app(client, alice):
    client.force_login(alice)
    return client


def categorical(name="quality", projects=(), **fields):
    fields.setdefault("values", [{"label": "good", "score": 1}, {"label": "bad", "score": 0}])
    config = annotation_config_create(name=name, kind="CATEGORICAL", **fields)
    for project in projects:
        project_annotation_config_enable(project=project, config=config)
    return config


def config_post(**overrides):
    data = {
        "name": "quality",
        "kind": "CATEGORICAL",
        "description": "Is the answer any good?",
        "optimization_direction": "MAXIMIZE",
        "value_label": ["good", "bad", ""],
        "value_score": ["1", "0", ""],
        "lower_bound": "",
        "upper_bound": "",
    }
    data.update(overrides)
    return data


def annotate_url(project: str, target: str, target_id: str) -> str:
    return reverse(
        "annotations:annotate",
        kwargs={"project": project, "target": target, "target_id": target_id},
    )


def html_of(response) -> str:
    return response.content.decode()


def pressed(html: str) -> list[str]:
    """The labels shown as the user's own (highlighted) choice."""
    return re.findall(r'value="([^"]*)" class="choice selected" aria-pressed="true"', html)


# --- URLs and login ----------------------------------------------------------------------------


def test_urls_have_the_names_other_pages_link_to():
    assert reverse("annotations:configs") == CONFIGS_URL
    assert reverse("annotations:project-annotations", args=["shop"]) == (
        "/projects/shop/annotations/"
    )
    assert reverse("annotations:agreement", args=["shop"]) == (
        "/projects/shop/annotations/agreement/"
    )


def test_every_page_needs_a_login(client):
    root, *_ = factories.trace(project="shop")
    config = categorical(projects=[root.project])
    for method, url in [
        ("get", CONFIGS_URL),
        ("get", NEW_URL),
        ("get", f"{CONFIGS_URL}{config.pk}/"),
        ("post", f"{CONFIGS_URL}{config.pk}/delete/"),
        ("get", annotate_url("shop", "span", root.span_id)),
        ("post", annotate_url("shop", "span", root.span_id)),
        ("get", "/projects/shop/annotations/"),
        ("get", "/projects/shop/annotations/agreement/"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/")
    assert AnnotationConfig.objects.count() == 1 and Annotation.objects.count() == 0


# --- Settings → Annotation configs ---------------------------------------------------------------


def test_configs_page_lists_rubrics_in_the_settings_tabs(app):
    shop = factories.project("shop")
    categorical(projects=[shop], description="Helpful?")
    annotation_config_create(name="confidence", kind="CONTINUOUS", lower_bound=0, upper_bound=5)
    annotation_config_create(name="comment", kind="FREEFORM")
    html = html_of(app.get(CONFIGS_URL))
    assert 'aria-label="Settings"' in html
    assert f'<a href="{CONFIGS_URL}" class="active" aria-current="page">Annotation configs</a>' in (
        html
    )
    assert html.index("comment") < html.index("confidence") < html.index("quality")
    assert "good · 1<" in html and "bad · 0<" in html
    assert "0 to 5" in html and "free text" in html
    row = html[html.index('data-config="quality"') :].split("</tr>")[0]
    assert ">shop</a>" in row and "Maximize" not in row  # direction NONE by default
    assert row.count("no project") == 0
    assert "no project" in html  # the other two are enabled nowhere


def test_configs_page_when_there_are_none(app):
    html = html_of(app.get(CONFIGS_URL))
    assert "No annotation configs yet" in html and NEW_URL in html


def test_create_a_categorical_config_enabled_for_projects(app):
    shop, other = factories.project("shop"), factories.project("other")
    factories.project("third")
    response = app.post(NEW_URL, config_post(projects=[shop.pk, other.pk]))
    assert response.status_code == 302 and response["Location"] == CONFIGS_URL
    config = AnnotationConfig.objects.get(name="quality")
    assert config.kind == "CATEGORICAL"
    assert config.values == [{"label": "good", "score": 1.0}, {"label": "bad", "score": 0.0}]
    assert config.description == "Is the answer any good?"
    assert config.optimization_direction == "MAXIMIZE"
    assert sorted(p.name for p in config.projects.all()) == ["other", "shop"]
    assert "Saved the annotation config quality." in html_of(app.get(CONFIGS_URL))


def test_create_continuous_and_freeform_configs_ignore_the_other_types_fields(app):
    # Values typed before switching the type to continuous are not sent to the service.
    response = app.post(
        NEW_URL, config_post(name="confidence", kind="CONTINUOUS", lower_bound="1", upper_bound="5")
    )
    assert response.status_code == 302
    confidence = AnnotationConfig.objects.get(name="confidence")
    assert (confidence.kind, confidence.values) == ("CONTINUOUS", [])
    assert (confidence.lower_bound, confidence.upper_bound) == (1.0, 5.0)
    response = app.post(
        NEW_URL,
        config_post(name="comment", kind="FREEFORM", lower_bound="1", optimization_direction=""),
    )
    assert response.status_code == 200  # the direction is required
    response = app.post(NEW_URL, config_post(name="comment", kind="FREEFORM", lower_bound="1"))
    comment = AnnotationConfig.objects.get(name="comment")
    assert (comment.kind, comment.values, comment.lower_bound) == ("FREEFORM", [], None)


def test_new_config_form_offers_each_type_and_every_project(app):
    factories.project("shop")
    html = html_of(app.get(NEW_URL))
    for kind in ("CATEGORICAL", "CONTINUOUS", "FREEFORM"):
        assert f'value="{kind}"' in html
    assert html.count('name="value_label"') == 2  # empty rows to fill in
    assert 'name="projects"' in html and "shop" in html
    assert "annotate.js" in html and "annotate.css" in html


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "note"}, "&#x27;note&#x27; is reserved"),
        ({"kind": "RANKING"}, "Select a valid choice."),
        ({"value_label": ["", ""], "value_score": ["", ""]}, "needs at least one value"),
        (
            {"value_label": ["good", "good"], "value_score": ["1", "0"]},
            "Value 2 label: &#x27;good&#x27; appears more than once.",
        ),
        ({"value_label": ["good", "bad"], "value_score": ["1", "high"]}, "Value 2: the score"),
        ({"value_label": ["good", ""], "value_score": ["1", "0"]}, "Value 2 label: must not"),
        (
            {"kind": "CONTINUOUS", "lower_bound": "5", "upper_bound": "1"},
            "must be less than upper_bound",
        ),
        ({"kind": "CONTINUOUS", "lower_bound": "low"}, "Enter a number."),
        ({"optimization_direction": "UP"}, "Select a valid choice."),
    ],
)
def test_invalid_config_shows_the_error_and_writes_nothing(app, overrides, message):
    shop = factories.project("shop")
    response = app.post(NEW_URL, config_post(projects=[shop.pk], **overrides))
    html = html_of(response)
    assert response.status_code == 200
    assert message in html
    assert AnnotationConfig.objects.count() == 0
    assert ProjectAnnotationConfig.objects.count() == 0
    # What was typed is shown again.
    if "value_label" in overrides:
        for label in overrides["value_label"]:
            if label:
                assert f'name="value_label" value="{label}"' in html


def test_duplicate_name_is_a_form_error_and_nothing_changes(app):
    shop = factories.project("shop")
    categorical()
    response = app.post(NEW_URL, config_post(projects=[shop.pk]))
    assert response.status_code == 200
    assert "&#x27;quality&#x27; is taken" in html_of(response)
    assert AnnotationConfig.objects.count() == 1
    assert ProjectAnnotationConfig.objects.count() == 0


def test_edit_a_config_changes_values_and_projects(app):
    shop, other = factories.project("shop"), factories.project("other")
    config = categorical(projects=[shop])
    url = f"{CONFIGS_URL}{config.pk}/"
    html = html_of(app.get(url))
    assert 'name="value_label" value="good"' in html and 'name="value_score" value="1"' in html
    assert re.search(rf'value="{shop.pk}"[^>]*checked', html)
    response = app.post(
        url,
        config_post(
            name="helpfulness",
            value_label=["good", "ok", "bad"],
            value_score=["1", "0.5", "0"],
            projects=[other.pk],
        ),
    )
    assert response.status_code == 302
    config.refresh_from_db()
    assert config.name == "helpfulness"
    assert [v["label"] for v in config.values] == ["good", "ok", "bad"]
    assert [p.name for p in config.projects.all()] == ["other"]


def test_invalid_edit_leaves_the_config_and_its_projects_as_they_were(app):
    shop = factories.project("shop")
    config = categorical(projects=[shop])
    categorical(name="taken")
    url = f"{CONFIGS_URL}{config.pk}/"
    response = app.post(url, config_post(name="taken", projects=[]))
    assert "&#x27;taken&#x27; is taken" in html_of(response)
    assert "Annotation config · quality" in html_of(response)
    response = app.post(url, config_post(value_label=["a", "a"], value_score=["", ""]))
    assert "appears more than once" in html_of(response)
    config.refresh_from_db()
    assert config.name == "quality" and [v["label"] for v in config.values] == ["good", "bad"]
    assert [p.name for p in config.projects.all()] == ["shop"]


def test_delete_a_config_keeps_the_annotations_made_with_it(app, alice):
    root, *_ = factories.trace(project="shop")
    config = categorical(projects=[root.project])
    app.post(annotate_url("shop", "span", root.span_id), {"name": "quality", "label": "good"})
    assert app.get(f"{CONFIGS_URL}{config.pk}/delete/").status_code == 405
    response = app.post(f"{CONFIGS_URL}{config.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == CONFIGS_URL
    assert not AnnotationConfig.objects.exists() and not ProjectAnnotationConfig.objects.exists()
    assert Annotation.objects.get().label == "good"
    assert "Deleted the annotation config quality" in html_of(app.get(CONFIGS_URL))


def test_unknown_config_is_404(app):
    assert app.get(f"{CONFIGS_URL}999/").status_code == 404
    assert app.post(f"{CONFIGS_URL}999/delete/").status_code == 404


# --- the annotate form ---------------------------------------------------------------------------


def trace_page(app, root):
    return app.get(
        reverse("detail:trace", kwargs={"project": "shop", "trace_id": root.trace.trace_id})
    )


def test_trace_page_without_enabled_configs_links_to_settings(app):
    root, *_ = factories.trace(project="shop")
    categorical()  # exists, but not enabled for shop
    html = html_of(trace_page(app, root))
    assert "No annotation configs are enabled for this project" in html
    assert f'href="{CONFIGS_URL}"' in html
    assert 'class="choice' not in html


def test_trace_page_shows_the_annotate_form_for_the_span_and_the_trace(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project], description="Helpful answer?")
    annotation_config_create(name="confidence", kind="CONTINUOUS", lower_bound=0, upper_bound=1)
    project_annotation_config_enable(
        project=root.project, config=AnnotationConfig.objects.get(name="confidence")
    )
    html = html_of(trace_page(app, root))
    span_form = annotate_url("shop", "span", root.span_id)
    trace_form = annotate_url("shop", "trace", root.trace.trace_id)
    assert f'hx-post="{span_form}"' in html and f'hx-post="{trace_form}"' in html
    assert html.count('name="label" value="good" class="choice"') == 2  # span and trace
    assert 'name="score" step="any" min="0" max="1"' in html
    assert "Helpful answer?" in html and "annotate.css" in html
    assert pressed(html) == []


def test_span_pane_partial_carries_the_annotate_form(app):
    root, _retriever, llm = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = reverse(
        "detail:span_pane",
        kwargs={"project": "shop", "trace_id": root.trace.trace_id, "span_id": llm.span_id},
    )
    html = html_of(app.get(url, headers=HTMX))
    assert html.lstrip().startswith('<article class="span-pane"')
    assert f'hx-post="{annotate_url("shop", "span", llm.span_id)}"' in html


def test_one_click_saves_the_label_as_the_users_annotation(app, alice):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = annotate_url("shop", "span", root.span_id)
    response = app.post(url, {"name": "quality", "label": "good", "explanation": ""}, headers=HTMX)
    html = html_of(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<form class="annotate-item kind-categorical"')
    assert pressed(html) == ["good"]
    assert "Saved." in html and "Remove mine" in html
    annotation = Annotation.objects.get()
    assert annotation.span == root and annotation.target_kind == "SPAN"
    assert (annotation.name, annotation.label, annotation.score) == ("quality", "good", 1.0)
    assert annotation.annotator_kind == AnnotatorKind.HUMAN
    assert annotation.source == AnnotationSource.APP
    assert annotation.identifier == "alice" and annotation.user == alice
    assert annotation.explanation is None

    # Changing it updates the same annotation; the page shows the new choice.
    html = html_of(app.post(url, {"name": "quality", "label": "bad"}, headers=HTMX))
    assert pressed(html) == ["bad"]
    annotation = Annotation.objects.get()
    assert (annotation.label, annotation.score) == ("bad", 0.0)
    assert pressed(html_of(trace_page(app, root))) == ["bad"]


def test_notes_change_alone_and_clear(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = annotate_url("shop", "span", root.span_id)
    app.post(url, {"name": "quality", "label": "good"}, headers=HTMX)
    html = html_of(
        app.post(
            url,
            {"name": "quality", "action": "save", "explanation": "cites <the> policy"},
            headers=HTMX,
        )
    )
    assert pressed(html) == ["good"]
    assert "cites &lt;the&gt; policy</textarea>" in html
    annotation = Annotation.objects.get()
    assert (annotation.label, annotation.explanation) == ("good", "cites <the> policy")
    app.post(url, {"name": "quality", "action": "save", "explanation": "  "}, headers=HTMX)
    assert Annotation.objects.get().explanation is None


def test_notes_before_any_label_is_an_error(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    html = html_of(
        app.post(
            annotate_url("shop", "span", root.span_id),
            {"name": "quality", "action": "save", "explanation": "hmm"},
            headers=HTMX,
        )
    )
    assert 'role="alert"' in html and "Label: choose a value" in html
    assert "hmm</textarea>" in html  # kept for another try
    assert not Annotation.objects.exists()


def test_remove_my_annotation_keeps_the_others(app, bob):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = annotate_url("shop", "span", root.span_id)
    app.post(url, {"name": "quality", "label": "good"}, headers=HTMX)
    app.force_login(bob)
    app.post(url, {"name": "quality", "label": "bad"}, headers=HTMX)
    html = html_of(app.post(url, {"name": "quality", "action": "delete"}, headers=HTMX))
    assert "Removed." in html and pressed(html) == [] and "Remove mine" not in html
    assert list(Annotation.objects.values_list("identifier", "label")) == [("alice", "good")]
    # Removing again is harmless.
    html = html_of(app.post(url, {"name": "quality", "action": "delete"}, headers=HTMX))
    assert "Nothing to remove." in html and Annotation.objects.count() == 1


def test_others_annotations_are_shown_read_only(app, alice, bob):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = annotate_url("shop", "span", root.span_id)
    app.force_login(bob)
    app.post(url, {"name": "quality", "label": "bad", "explanation": "wrong <b>"}, headers=HTMX)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=root.span_id,
                name="quality",
                annotator_kind="LLM",
                label="good",
                identifier="judge-v1",
            )
        ]
    )
    app.force_login(alice)
    html = html_of(app.get(url, headers=HTMX))
    assert pressed(html) == []  # alice has not annotated
    others = html[html.index('aria-label="Other annotators"') :]
    assert '<span class="author">bob</span>' in others and "wrong &lt;b&gt;" in others
    assert '<span class="author">judge-v1</span>' in others and ">LLM<" in others
    assert "Remove mine" not in html


def test_continuous_score_within_bounds(app):
    root, *_ = factories.trace(project="shop")
    config = annotation_config_create(
        name="confidence", kind="CONTINUOUS", lower_bound=0, upper_bound=1
    )
    project_annotation_config_enable(project=root.project, config=config)
    url = annotate_url("shop", "span", root.span_id)
    html = html_of(app.post(url, {"name": "confidence", "score": "0.75"}, headers=HTMX))
    assert 'value="0.75"' in html and "Saved." in html
    assert Annotation.objects.get().score == 0.75 and Annotation.objects.get().label is None
    for bad, message in [
        ("1.5", "Score: must be at most 1"),
        ("-1", "Score: must be at least 0"),
        ("lots", "Score: Enter a number."),
        ("nan", "Score: Enter a number."),
        ("", "Score: enter a number"),
    ]:
        Annotation.objects.all().delete()
        html = html_of(app.post(url, {"name": "confidence", "score": bad}, headers=HTMX))
        assert message in html, bad
        assert f'value="{bad}"' in html  # what was typed stays in the box
        assert not Annotation.objects.exists()


def test_freeform_text_is_the_annotation(app):
    root, *_ = factories.trace(project="shop")
    config = annotation_config_create(name="comment", kind="FREEFORM")
    project_annotation_config_enable(project=root.project, config=config)
    url = annotate_url("shop", "span", root.span_id)
    html = html_of(app.post(url, {"name": "comment", "explanation": ""}, headers=HTMX))
    assert "Explanation: must not be empty" in html and not Annotation.objects.exists()
    html = html_of(app.post(url, {"name": "comment", "explanation": "too long"}, headers=HTMX))
    assert "too long</textarea>" in html
    assert Annotation.objects.get().explanation == "too long"


def test_a_label_outside_the_rubric_is_rejected(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    html = html_of(
        app.post(
            annotate_url("shop", "span", root.span_id),
            {"name": "quality", "label": "meh"},
            headers=HTMX,
        )
    )
    assert "Label: &#x27;meh&#x27; is not one of good, bad" in html
    assert not Annotation.objects.exists()


def test_a_config_not_enabled_for_the_project_is_refused(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[factories.project("other")])
    response = app.post(
        annotate_url("shop", "span", root.span_id), {"name": "quality", "label": "good"}
    )
    assert response.status_code == 400 and not Annotation.objects.exists()
    response = app.post(annotate_url("shop", "span", root.span_id), {"label": "good"})
    assert response.status_code == 400
    # A row posted after its config was disabled is replaced by a note (htmx swaps no 4xx).
    response = app.post(
        annotate_url("shop", "span", root.span_id),
        {"name": "quality", "label": "good"},
        headers=HTMX,
    )
    assert response.status_code == 200 and 'role="alert"' in html_of(response)
    assert "“quality” is no longer enabled for this project" in html_of(response)
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    ("project", "target", "target_id"),
    [
        ("nope", "span", "ROOT"),
        ("shop", "spans", "ROOT"),
        ("shop", "span", "0" * 16),
        ("shop", "trace", "0" * 32),
        ("shop", "session", "missing"),
        ("other", "span", "ROOT"),  # a span of another project
    ],
)
def test_unknown_targets_are_404(app, project, target, target_id):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project, factories.project("other")])
    url = annotate_url(project, target, root.span_id if target_id == "ROOT" else target_id)
    assert app.post(url, {"name": "quality", "label": "good"}).status_code == 404
    assert app.get(url, headers=HTMX).status_code == 404
    assert not Annotation.objects.exists()


def test_without_htmx_a_post_goes_back_to_the_page_with_errors_as_messages(app):
    root, _retriever, llm = factories.trace(project="shop")
    categorical(projects=[root.project])
    url = annotate_url("shop", "span", llm.span_id)
    span_page = reverse(
        "detail:span_pane",
        kwargs={"project": "shop", "trace_id": root.trace.trace_id, "span_id": llm.span_id},
    )
    response = app.post(url, {"name": "quality", "label": "good"})
    assert response.status_code == 302 and response["Location"] == span_page
    assert Annotation.objects.get().label == "good"
    response = app.post(url, {"name": "quality", "label": "meh"}, follow=True)
    assert "quality: Label: &#x27;meh&#x27; is not one of good, bad" in html_of(response)
    assert app.get(url)["Location"] == span_page  # GET without htmx: the page itself


def test_annotate_get_for_htmx_is_the_whole_form(app):
    root, *_ = factories.trace(project="shop")
    categorical(projects=[root.project])
    html = html_of(app.get(annotate_url("shop", "trace", root.trace.trace_id), headers=HTMX))
    assert html.lstrip().startswith('<section class="pane-section annotate" id="annotate-trace"')
    assert "<html" not in html and 'value="good"' in html


def test_trace_and_session_annotations(app, alice):
    root, *_ = factories.trace(project="shop", session_id="conv-1")
    categorical(projects=[root.project])
    app.post(
        annotate_url("shop", "trace", root.trace.trace_id),
        {"name": "quality", "label": "good"},
        headers=HTMX,
    )
    session_page = reverse("detail:session", kwargs={"project": "shop", "session_id": "conv-1"})
    html = html_of(app.get(session_page))
    assert f'hx-post="{annotate_url("shop", "session", "conv-1")}"' in html
    assert pressed(html) == []
    app.post(
        annotate_url("shop", "session", "conv-1"), {"name": "quality", "label": "bad"}, headers=HTMX
    )
    assert pressed(html_of(app.get(session_page))) == ["bad"]
    rows = Annotation.objects.order_by("id").values_list("target_kind", "label", "identifier")
    assert list(rows) == [("TRACE", "good", "alice"), ("SESSION", "bad", "alice")]
    trace_html = html_of(trace_page(app, root))
    assert 'id="annotate-trace-' in trace_html and pressed(trace_html) == ["good"]


# --- the Annotations tab -------------------------------------------------------------------------


@pytest.fixture
def annotated(alice, bob):
    """shop: spans annotated by alice and bob (app), an LLM evaluator (task), an API client;
    a trace and a session annotation; another project's annotation."""
    root, retriever, llm = factories.trace(project="shop", session_id="conv-1")
    factories.trace(project="other")
    other_span = factories.trace(project="other")[0]

    def put(target_kind, target_id, name, kind="HUMAN", source="APP", user=None, **fields):
        identifier = fields.pop("identifier", user.username if user else "")
        annotations_upsert(
            items=[
                AnnotationInput(
                    target_kind=target_kind,
                    target_id=target_id,
                    name=name,
                    annotator_kind=kind,
                    identifier=identifier,
                    **fields,
                )
            ],
            source=source,
            user=user,
        )

    put("SPAN", root.span_id, "quality", user=alice, label="good", score=1.0)
    put("SPAN", root.span_id, "quality", user=bob, label="bad", score=0.0, explanation="wrong")
    put("SPAN", llm.span_id, "eval.quality", kind="LLM", source="TASK", label="good", score=0.9)
    put("SPAN", retriever.span_id, "relevance", kind="CODE", source="API", score=0.3)
    put("TRACE", root.trace.trace_id, "overall", user=alice, label="fine")
    put("SESSION", "conv-1", "resolved", user=bob, label="yes", explanation="customer happy")
    put("SPAN", other_span.span_id, "quality", user=alice, label="other-project")
    return {"root": root, "retriever": retriever, "llm": llm}


def tab_url(**params) -> str:
    url = reverse("annotations:project-annotations", args=["shop"])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def shown(html: str) -> list[str]:
    """(name, label or score) of each row, in order."""
    rows = re.findall(r'<tr data-annotation="\d+">(.*?)</tr>', html, re.S)
    out = []
    for row in rows:
        name = re.search(r'<td class="mono">([^<]*)</td>', row).group(1)
        label = re.search(r'<span class="badge accent">([^<]*)</span>', row)
        out.append(f"{name}={label.group(1)}" if label else name)
    return out


def test_annotations_tab_lists_the_projects_annotations_with_links(app, annotated):
    response = app.get(tab_url())
    html = html_of(response)
    assert response.status_code == 200
    assert 'aria-current="page">Annotations</a>' in html  # the project tab
    assert 'class="active" aria-current="page">All annotations</a>' in html
    assert sorted(shown(html)) == sorted(
        [
            "quality=good",
            "quality=bad",
            "eval.quality=good",
            "relevance",
            "overall=fine",
            "resolved=yes",
        ]
    )
    assert "other-project" not in html
    root, llm = annotated["root"], annotated["llm"]
    trace_id = root.trace.trace_id
    assert f'href="/projects/shop/traces/{trace_id}/spans/{llm.span_id}/"' in html
    assert f'href="/projects/shop/traces/{trace_id}/"' in html
    assert 'href="/projects/shop/sessions/conv-1/"' in html
    assert "customer happy" in html and ">TASK<" in html and ">LLM<" in html
    assert '<option value="alice">' in html and '<option value="eval.quality">' in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "quality"}, ["quality=good", "quality=bad"]),
        ({"kind": "LLM"}, ["eval.quality=good"]),
        ({"kind": "CODE"}, ["relevance"]),
        ({"source": "API"}, ["relevance"]),
        ({"author": "bob"}, ["quality=bad", "resolved=yes"]),
        ({"target": "TRACE"}, ["overall=fine"]),
        ({"target": "SESSION", "author": "bob"}, ["resolved=yes"]),
        ({"q": "happy"}, ["resolved=yes"]),
        ({"q": "WRONG"}, ["quality=bad"]),
        ({"q": "conv-1"}, ["resolved=yes"]),
        ({"name": "quality", "kind": "LLM"}, []),
    ],
)
def test_annotations_tab_filters(app, annotated, params, expected):
    html = html_of(app.get(tab_url(**params)))
    assert sorted(shown(html)) == sorted(expected)
    if not expected:
        assert "No annotations match" in html


def test_annotations_tab_filter_by_target_id(app, annotated):
    html = html_of(app.get(tab_url(q=annotated["root"].span_id)))
    assert sorted(shown(html)) == ["quality=bad", "quality=good"]


def test_annotations_tab_for_htmx_is_the_results_only(app, annotated):
    html = html_of(app.get(tab_url(kind="HUMAN"), headers=HTMX))
    assert "<html" not in html and 'id="filters"' not in html
    assert sorted(shown(html)) == ["overall=fine", "quality=bad", "quality=good", "resolved=yes"]


def test_annotations_tab_filter_form_carries_its_state_and_htmx(app, annotated):
    html = html_of(app.get(tab_url(kind="HUMAN", q="good", sort="name")))
    start = html.index('<form id="filters"')
    form = html[start : html.index("</form>", start)]
    assert 'hx-get="/projects/shop/annotations/"' in form and 'hx-push-url="true"' in form
    assert 'hx-target="#results"' in form and 'method="get"' in form
    assert '<option value="HUMAN" selected>' in form
    assert '<option value="name" selected>' in form
    assert 'name="q" value="good"' in form


def test_annotations_tab_bad_filter_values_are_errors_and_not_applied(app, annotated):
    response = app.get(tab_url(kind="ROBOT", sort="sideways", page="0"))
    html = html_of(response)
    assert response.status_code == 200
    assert "Kind: Select a valid choice. ROBOT is not one of the available choices." in html
    assert "Sort: Select a valid choice." in html and "Page: Ensure this value" in html
    assert len(shown(html)) == 6


def test_annotations_tab_sorts(app, annotated):
    html = html_of(app.get(tab_url(sort="score_desc", kind="HUMAN")))
    assert shown(html)[:2] == ["quality=good", "quality=bad"]  # 1.0, 0.0, then no score
    html = html_of(app.get(tab_url(sort="name")))
    assert [s.split("=")[0] for s in shown(html)] == [
        "eval.quality",
        "overall",
        "quality",
        "quality",
        "relevance",
        "resolved",
    ]


def test_annotations_tab_pages_with_real_links(app):
    root, *_ = factories.trace(project="shop")
    annotations_upsert(
        items=[
            AnnotationInput(target_kind="SPAN", target_id=root.span_id, name=f"n{i:03}", label="x")
            for i in range(53)
        ]
    )
    html = html_of(app.get(tab_url(sort="name")))
    assert len(shown(html)) == 50 and shown(html)[0] == "n000=x"
    assert 'href="?sort=name&amp;page=2"' in html and "Page 1" in html
    html = html_of(app.get(tab_url(sort="name", page=2)))
    assert shown(html) == ["n050=x", "n051=x", "n052=x"]
    assert 'href="?sort=name&amp;page=1"' in html and 'rel="next"' not in html
    html = html_of(app.get(tab_url(sort="name", page=9)))
    assert "This page is empty" in html


def test_annotations_tab_empty_and_unknown_project(app):
    factories.project("shop")
    html = html_of(app.get(tab_url()))
    assert "No annotations yet" in html and CONFIGS_URL in html
    assert app.get("/projects/nope/annotations/").status_code == 404
    assert app.get("/projects/nope/annotations/agreement/").status_code == 404


# --- agreement ---------------------------------------------------------------------------------


def test_agreement_view_compares_people_and_evaluators(app, alice, bob):
    spans = [factories.trace(project="shop")[0] for _ in range(4)]
    labels = {
        # span: (alice, bob, LLM judge)
        0: ("good", "good", "good"),
        1: ("good", "bad", "good"),
        2: ("bad", "bad", "good"),
        3: ("bad", "bad", "bad"),
    }
    items = []
    for index, (a, b, judge) in labels.items():
        span_id = spans[index].span_id
        items += [
            AnnotationInput("SPAN", span_id, "quality", label=a, identifier="alice"),
            AnnotationInput("SPAN", span_id, "quality", label=b, identifier="bob"),
            AnnotationInput("SPAN", span_id, "quality", annotator_kind="LLM", label=judge),
        ]
    annotations_upsert(items=items, source="APP")
    response = app.get("/projects/shop/annotations/agreement/")
    html = html_of(response)
    assert response.status_code == 200
    assert 'class="active" aria-current="page">Agreement</a>' in html
    table = html[html.index('data-name="quality"') :]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>.*?</tr>", table, re.S)
    assert rows[:3] == [("alice", "bob"), ("alice", "quality"), ("bob", "quality")]
    assert "Pairing rule:" in html and "12 pairs found</strong>: 12 on the same target" in html
    # alice vs bob: 3 of 4 agree; kappa = (0.75 - 0.5) / 0.5 = 0.5
    first = table.split("</tr>")[1]
    assert ">4<" in first and ">75%<" in first and ">0.50<" in first
    assert "alice vs bob: 1 disagreement to review" in html
    assert f"/spans/{spans[1].span_id}/" in html
    assert "Human - LLM" in html


def test_agreement_view_filters_by_name_and_has_an_empty_state(app):
    factories.project("shop")
    html = html_of(app.get("/projects/shop/annotations/agreement/"))
    assert "Nothing to compare yet" in html
    html = html_of(app.get("/projects/shop/annotations/agreement/?name=quality", headers=HTMX))
    assert "<html" not in html and html.lstrip().startswith('<div id="report">')
