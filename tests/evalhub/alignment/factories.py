"""Builders shared by the alignment tests: people's labels on ten items, the current version's
answers and a draft judge."""

from __future__ import annotations

from typing import Any

from tests.evalhub.tasks.factories import JUDGE

# People's labels on 10 items; the current version (v1) is right on 6 of them.
PEOPLE = ["correct"] * 5 + ["incorrect"] * 5
CURRENT = ["correct"] * 5 + ["correct", "correct", "correct", "correct", "incorrect"]
DRAFT_TEMPLATE = "Q: {input}\nA: {output}\nJudge strictly: is the answer correct?"


def draft(**changes: Any) -> dict[str, Any]:
    return {**JUDGE, "template": DRAFT_TEMPLATE, **changes}
