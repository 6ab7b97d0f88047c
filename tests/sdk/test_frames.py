"""The SDK's frame conversions on their own (no server)."""

import math

import numpy as np
import pandas as pd
import pytest
from evalhub_client import frames


def test_attributes_nest_through_objects_and_lists():
    flat = {
        "llm.model_name": "m",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.1.message.role": "assistant",
        "tag.tags": ["a", "b"],
        "metadata.limits.max": 5,
    }
    nested = frames.unflatten(flat)
    assert nested["llm"]["input_messages"] == [
        {"message": {"role": "user"}},
        {"message": {"role": "assistant"}},
    ]
    assert frames.flatten_objects(nested) == {
        "llm.model_name": "m",
        "llm.input_messages": [{"message": {"role": "user"}}, {"message": {"role": "assistant"}}],
        "tag.tags": ["a", "b"],
        "metadata.limits.max": 5,
    }


def test_nulls_and_native_values():
    assert all(frames.is_null(v) for v in (None, float("nan"), pd.NA, pd.NaT, np.float64("nan")))
    assert not any(frames.is_null(v) for v in ([], {}, "", 0, np.array([np.nan])))
    assert frames.native(np.int64(3)) == 3 and type(frames.native(np.int64(3))) is int
    assert frames.native(np.array([1.5, np.nan])) == [1.5, None]
    assert frames.native({"a": np.bool_(True)}) == {"a": True}


def test_frame_records_keep_a_named_index():
    frame = pd.DataFrame({"x": [1.0, math.nan]}, index=pd.Index(["s1", "s2"], name="span_id"))
    assert frames.frame_records(frame) == [
        {"span_id": "s1", "x": 1.0},
        {"span_id": "s2", "x": None},
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (np.int64(2), 2),
        (1.5, 1.5),
        (True, "True"),
        (np.bool_(False), "False"),
        (None, None),
        ({"a": 1}, '{"a": 1}'),
        ([1, "x"], '[1, "x"]'),
    ],
)
def test_metadata_values(value, expected):
    assert frames.metadata_value(value) == expected


def test_eval_columns_name_the_bad_column():
    specs = frames.eval_columns(["eval.Q&A v2.label", "eval.x.text", "name"])
    assert [(s.name, s.field) for s in specs] == [("Q&A v2", "label"), ("x", "explanation")]
    with pytest.raises(ValueError, match=r"'eval\.x\.lable'"):
        frames.eval_columns(["eval.x.lable"])


def test_placeholders_of_documentation_examples_are_null_cells():
    frame = pd.DataFrame(
        [{"a": [...], "b": [..., ...], "c": ..., "d": [1, ...], "e": []}],
    )
    (row,) = frames.frame_records(frame)
    assert row == {"a": None, "b": None, "c": None, "d": [1, None], "e": []}
    assert frames.is_null(...)
    assert not frames.is_null([...])  # a list is never null; frame_records reads it


def test_long_form_results_become_result_columns():
    rows = [
        {"context.span_id": "s1", "name": "Quality", "score": 0.5, "other": "x"},
        {"context.span_id": "s2", "name": "tone.v2", "label": "calm", "text": None},
    ]
    assert frames.long_form_records(rows, "eval.") == [
        {"context.span_id": "s1", "eval.Quality.score": 0.5},
        {"context.span_id": "s2", "eval.tone.v2.label": "calm"},
    ]
    assert frames.long_form_records([{"context.span_id": "s1", "name": "q"}], "eval.") is None
    assert frames.long_form_records([{"context.span_id": "s1", "score": 1}], "eval.") is None
    with pytest.raises(ValueError, match="every row needs a name"):
        frames.long_form_records([{"context.span_id": "s1", "name": None, "score": 1}], "eval.")
