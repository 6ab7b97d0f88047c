"""The naming rule: a result's name written as a filter field reads back as the same name, and
the prefixes select people or machines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from annotations.naming import filter_field, kinds_selected, label_key, quote_name, result_name
from tracing.query import compile_filter
from tracing.query.fields import AnnotationTarget, resolve
from tracing.query.parser import Comparison, parse


def _target(text: str) -> AnnotationTarget:
    node = parse(text)
    assert isinstance(node, Comparison)
    target = resolve(node.field)
    assert isinstance(target, AnnotationTarget)
    return target


# Any name a database can store (no NUL), spaces, quotes, backslashes and unicode included.
@given(st.text(st.characters(exclude_characters="\0"), min_size=1, max_size=80))
def test_any_name_written_as_a_filter_field_reads_back_as_itself(name):
    for human in (False, True):
        text = f"{filter_field(name, human=human, attribute='label')} = 'x'"
        compile_filter(text)  # it compiles
        target = _target(text)
        assert (target.name, target.attribute) == (name, "label")
        assert target.kinds == (("HUMAN",) if human else ("LLM", "CODE"))


def test_plain_names_stay_plain_others_are_quoted():
    assert filter_field("Correctness", human=False, attribute="label") == "eval.Correctness.label"
    assert filter_field("Quality", human=True) == "annotation.Quality"
    assert quote_name("Q&A Correctness") == '"Q&A Correctness"'
    assert quote_name("and") == '"and"' and quote_name("2fast") == '"2fast"'
    assert quote_name('say "hi"\\') == '"say \\"hi\\"\\\\"'


def test_heads_select_machines_or_people_and_a_result_is_named_after_its_producer():
    assert kinds_selected("eval") == kinds_selected("evals") == ("LLM", "CODE")
    assert kinds_selected("annotation") == kinds_selected("annotations") == ("HUMAN",)
    assert result_name(" Correctness ") == "Correctness"
    assert label_key("quality", "HUMAN") == "quality"
    assert label_key("quality", "CODE") == "eval.quality"
