import pytest

from annotations.models import AnnotationConfig, ProjectAnnotationConfig
from annotations.rubrics.selectors import annotation_config_get, annotation_config_list
from annotations.rubrics.services import (
    AnnotationConfigInvalid,
    AnnotationConfigNameTaken,
    annotation_config_create,
    annotation_config_delete,
    annotation_config_update,
    project_annotation_config_disable,
    project_annotation_config_enable,
)
from evalhub.core.paging import InvalidCursor
from tests import factories

pytestmark = pytest.mark.django_db


def categorical(name="correctness", **fields):
    fields.setdefault(
        "values", [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}]
    )
    return annotation_config_create(name=name, kind="CATEGORICAL", **fields)


def test_create_categorical_stores_labels_with_scores():
    config = categorical(
        description="Is the answer right?",
        optimization_direction="MAXIMIZE",
        values=[{"label": " correct ", "score": 1}, {"label": "unsure"}],
    )
    config.refresh_from_db()
    assert config.kind == "CATEGORICAL"
    assert config.description == "Is the answer right?"
    assert config.optimization_direction == "MAXIMIZE"
    assert config.values == [
        {"label": "correct", "score": 1.0},
        {"label": "unsure", "score": None},
    ]
    assert config.lower_bound is None and config.upper_bound is None


def test_create_continuous_and_freeform_default_to_no_direction():
    continuous = annotation_config_create(
        name="relevance", kind="CONTINUOUS", lower_bound=0, upper_bound=1
    )
    freeform = annotation_config_create(name="feedback", kind="FREEFORM")
    assert (continuous.lower_bound, continuous.upper_bound) == (0.0, 1.0)
    assert continuous.optimization_direction == freeform.optimization_direction == "NONE"
    assert freeform.values == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "BINARY"}, "type", "must be one of CATEGORICAL, CONTINUOUS, FREEFORM"),
        ({"kind": "CATEGORICAL", "values": []}, "values", "at least one value"),
        (
            {"kind": "CATEGORICAL", "values": [{"label": "a"}, {"label": "a", "score": 1}]},
            "values[1].label",
            "appears more than once",
        ),
        ({"kind": "CATEGORICAL", "values": [{"label": " "}]}, "values[0].label", "empty"),
        (
            {"kind": "CONTINUOUS", "lower_bound": 1, "upper_bound": 1},
            "lower_bound",
            "less than upper_bound",
        ),
        (
            {"kind": "CONTINUOUS", "lower_bound": 5, "upper_bound": 1},
            "lower_bound",
            "less than upper_bound",
        ),
        (
            {"kind": "CONTINUOUS", "lower_bound": float("nan")},
            "lower_bound",
            "finite number",
        ),
        ({"kind": "FREEFORM", "values": [{"label": "a"}]}, "values", "only a CATEGORICAL"),
        (
            {"kind": "FREEFORM", "optimization_direction": "UP"},
            "optimization_direction",
            "must be one of",
        ),
        ({"kind": "FREEFORM", "name": "  "}, "name", "must not be empty"),
        ({"kind": "FREEFORM", "name": "note"}, "name", "reserved"),
    ],
)
def test_invalid_config_names_the_field_and_writes_nothing(fields, field, message):
    fields.setdefault("name", "rubric")
    with pytest.raises(AnnotationConfigInvalid) as raised:
        annotation_config_create(**fields)
    assert isinstance(raised.value, ValueError)
    assert raised.value.field == field
    assert message in raised.value.message
    assert not AnnotationConfig.objects.exists()


def test_duplicate_name_is_rejected_on_create_and_update():
    categorical(name="correctness")
    other = annotation_config_create(name="feedback", kind="FREEFORM")
    with pytest.raises(AnnotationConfigNameTaken, match="'correctness' already exists"):
        annotation_config_create(name="correctness", kind="FREEFORM")
    with pytest.raises(AnnotationConfigNameTaken):
        annotation_config_update(config=other, name="correctness", kind="FREEFORM")
    other.refresh_from_db()
    assert other.name == "feedback"
    assert AnnotationConfig.objects.count() == 2


def test_update_replaces_every_field_and_keeps_its_own_name():
    config = categorical(description="old", optimization_direction="MAXIMIZE")
    annotation_config_update(
        config=config, name="correctness", kind="CONTINUOUS", lower_bound=-1, upper_bound=1
    )
    config.refresh_from_db()
    assert config.kind == "CONTINUOUS"
    assert config.values == []
    assert config.description == ""
    assert config.optimization_direction == "NONE"
    assert (config.lower_bound, config.upper_bound) == (-1.0, 1.0)


def test_invalid_update_leaves_the_config_unchanged():
    config = categorical()
    with pytest.raises(AnnotationConfigInvalid):
        annotation_config_update(config=config, name="correctness", kind="CATEGORICAL", values=[])
    config.refresh_from_db()
    assert [v["label"] for v in config.values] == ["correct", "incorrect"]


def test_enable_and_disable_per_project_are_idempotent():
    config = categorical()
    project, other = factories.project("support"), factories.project("sales")
    assert project_annotation_config_enable(project=project, config=config) is True
    assert project_annotation_config_enable(project=project, config=config) is False
    assert list(project.annotation_configs.all()) == [config]
    assert not other.annotation_configs.exists()
    assert project_annotation_config_disable(project=project, config=config) is True
    assert project_annotation_config_disable(project=project, config=config) is False
    assert not project.annotation_configs.exists()
    assert AnnotationConfig.objects.filter(pk=config.pk).exists()


def test_delete_removes_its_enablements():
    config = categorical()
    project_annotation_config_enable(project=factories.project(), config=config)
    annotation_config_delete(config=config)
    assert not AnnotationConfig.objects.exists()
    assert not ProjectAnnotationConfig.objects.exists()


def test_get_by_id_or_name():
    config = categorical(name="correctness")
    numeric = annotation_config_create(name="12345", kind="FREEFORM")
    assert annotation_config_get(str(config.pk)) == config
    assert annotation_config_get("correctness") == config
    assert annotation_config_get("12345") == numeric
    assert annotation_config_get("missing") is None


def test_list_pages_newest_first_and_filters_by_project():
    configs = [annotation_config_create(name=f"c{i}", kind="FREEFORM") for i in range(5)]
    first = annotation_config_list(limit=2)
    assert [c.name for c in first.items] == ["c4", "c3"]
    second = annotation_config_list(limit=2, cursor=first.next_cursor)
    third = annotation_config_list(limit=2, cursor=second.next_cursor)
    assert [c.name for c in second.items + third.items] == ["c2", "c1", "c0"]
    assert third.next_cursor is None

    project = factories.project()
    project_annotation_config_enable(project=project, config=configs[1])
    assert annotation_config_list(project=project).items == [configs[1]]
    with pytest.raises(InvalidCursor):
        annotation_config_list(cursor="abc")
    with pytest.raises(ValueError, match="limit"):
        annotation_config_list(limit=0)
