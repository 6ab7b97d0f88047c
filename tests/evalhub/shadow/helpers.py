"""Shared set-up of the shadow tests: a task with a judge, a candidate that judges differently,
and the fake judge's answer that tells the two apart."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.evalhub.fake_openai import completion
from tests.evalhub.tasks.factories import JUDGE

STRICT = "Judge strictly"
CANDIDATE = {**JUDGE, "template": f"{JUDGE['template']}\n{STRICT}: is it fully correct?"}


def strict_reply(
    strict_labels: dict[str, str] | None = None, *, default: str = "incorrect"
) -> Callable[[dict], dict]:
    """The fake judge's answer: "correct" to the active version's prompt; to the candidate's
    (``STRICT`` in it) the label of the first ``strict_labels`` key found in the prompt, else
    ``default``."""
    strict_labels = strict_labels or {}

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        label = "correct"
        if STRICT in text:
            found = [k for k in strict_labels if re.search(rf"\b{re.escape(k)}\b", text)]
            label = strict_labels[found[0]] if found else default
        return completion(body, verdict={"label": label, "explanation": "by rule"}, tokens=(20, 5))

    return reply
