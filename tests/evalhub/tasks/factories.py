"""Shared set-up for the online-task tests: a judge evaluator, a code evaluator, a task."""

from __future__ import annotations

from typing import Any

from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.services import evaluator_create
from evalhub.tasks.models import Task
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
from tests import factories

JUDGE = {
    "kind": "LLM",
    "template": "Question: {input}\nAnswer: {output}\nIs it correct?",
    "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    "output_mode": "tool",
}
CODE = {"kind": "CODE", "check": "contains_keywords", "params": {"keywords": ["refund"]}}


def judge(name: str = "correctness", **changes: Any) -> Evaluator:
    return evaluator_create(name=name, config={**JUDGE, **changes})


def code_check(name: str = "mentions_refund") -> Evaluator:
    return evaluator_create(name=name, config=CODE)


def make_task(
    *evaluators: Evaluator, project: str = "default", name: str = "quality", **fields: Any
) -> Task:
    return task_create(
        data=TaskInput(
            name=name,
            project=factories.project(project),
            evaluators=[TaskEvaluatorInput(evaluator=e) for e in evaluators],
            **fields,
        )
    )
