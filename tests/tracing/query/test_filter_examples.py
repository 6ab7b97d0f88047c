"""Every filter example of the README, the filter-language docs and the SDK README runs on the
demo data and finds rows on the Traces, Spans and Sessions tabs.

The examples are read from the documents, not copied here, so an example is covered as soon as
it is written. An example is:

- every line of a fenced ``filter`` block (a trailing ``# comment`` left out);
- the filter of a code sample: ``filter="…"``, ``--filter "…"``, ``.where("…")``;
- every inline code span of the prose that is a whole filter — it parses and compiles; field
  names and placeholders such as ``field = value`` do not.

The SDK README's notebook filters by the results the notebook itself logs, so the notebook is
run first, as written, with the real SDK against a live server holding the demo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tracing.demo.seed import demo_seed
from tracing.query import FilterError, compile_filter

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = ("README.md", "docs/filter-language.md", "sdk/README.md")
TABS = ("traces", "spans", "sessions")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_SAMPLE_FILTER = re.compile(
    r"""(?:\bfilter=|--filter\s+|\.where\()(?P<q>["'])(?P<text>(?:(?!(?P=q)).)+)(?P=q)"""
)
_INLINE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True, slots=True)
class Example:
    document: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def _line_of(content: str, offset: int) -> int:
    return content.count("\n", 0, offset) + 1


def _compiles(text: str) -> bool:
    try:
        compile_filter(text)
    except FilterError:
        return False
    return text.strip() != ""


def examples(document: str) -> list[Example]:
    """The filter examples of one document, in order."""
    content = (ROOT / document).read_text()
    found: list[tuple[int, str]] = []
    for fence in _FENCE.finditer(content):
        language, body = fence.group(1), fence.group(2)
        first_line = _line_of(content, fence.start(2))
        for number, line in enumerate(body.splitlines()):
            if language == "filter":
                text = re.sub(r"\s+#.*$", "", line).strip()
                if text:
                    found.append((first_line + number, text))
            else:
                for sample in _SAMPLE_FILTER.finditer(line):
                    found.append((first_line + number, sample.group("text")))
    prose = _FENCE.sub(lambda fence: re.sub(r"[^\n]", " ", fence.group(0)), content)
    for span in _INLINE.finditer(prose):
        if _compiles(span.group(1)):
            found.append((_line_of(content, span.start()), span.group(1)))
    return [Example(document, line, text) for line, text in sorted(found)]


def test_examples_are_read_from_every_kind_of_place():
    readme = [e.text for e in examples("README.md")]
    assert "evals['Hallucination'].label == 'hallucinated'" in readme  # a filter block
    assert "span_kind == 'LLM' and latency_ms > 2000" in readme  # .where("…")
    assert "eval.Correctness.label = 'incorrect'" in readme  # inline in the prose
    docs = [e.text for e in examples("docs/filter-language.md")]
    assert "'refund' not in output" in docs  # the comment is left out
    assert "field = value" not in docs and "latency_ms" not in docs
    assert not any("latncy_ms" in text for text in docs)  # the errors block is no example
    sdk = [e.text for e in examples("sdk/README.md")]
    assert "eval.mentions_refund.label == 'yes'" in sdk and "latency_ms > 2000" in sdk
    assert len(docs) >= 30


def _notebook(content: str) -> str:
    """The python block under the SDK README's notebook heading."""
    heading = content.index("## A notebook")
    fence = _FENCE.search(content, heading)
    assert fence is not None and fence.group(1) == "python"
    return fence.group(2)


@pytest.mark.django_db(transaction=True)
def test_every_filter_example_finds_rows_on_every_tab(
    live_server, api_key, client, django_user_model, monkeypatch
):
    demo_seed()
    monkeypatch.setenv("EVALHUB_BASE_URL", live_server.url)
    monkeypatch.setenv("EVALHUB_API_KEY", api_key)
    exec(compile(_notebook((ROOT / "sdk/README.md").read_text()), "sdk/README.md", "exec"), {})

    client.force_login(django_user_model.objects.create_user("reader", is_staff=True))
    every = [example for document in DOCUMENTS for example in examples(document)]
    empty = []
    for example in every:
        for tab in TABS:
            page = client.get(f"/projects/demo/{tab}/?{urlencode({'q': example.text})}")
            assert page.status_code == 200, example
            html = page.content.decode()
            assert 'role="alert"' not in html, f"{example}: the {tab} tab refuses it"
            if "<tr data-key=" not in html:
                empty.append(f"{example} — no {tab}")
    assert empty == [], "\n".join(empty)
