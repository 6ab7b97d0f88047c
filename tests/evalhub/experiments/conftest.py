"""Fixtures for experiments: the fake OpenAI-compatible server and a provider on it come from
tests/evalhub/conftest.py; here a three-example dataset and a prompt that answers in capitals."""

from __future__ import annotations

import pytest

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent
from evalhub.experiments.prompts import prompt_version_create


@pytest.fixture
def dataset():
    rows = [
        UploadRow(ExampleContent({"question": "capital of France"}, {"answer": "PARIS"})),
        UploadRow(ExampleContent({"question": "2+2"}, {"answer": "4"})),
        UploadRow(ExampleContent({"other": "no question here"}, {"answer": "?"})),
    ]
    return dataset_upload(name="qa", rows=rows)


@pytest.fixture
def prompt():
    return prompt_version_create(
        name="shout",
        version={
            "model_name": "gpt-4o-mini",
            "template": {
                "type": "chat",
                "messages": [
                    {"role": "system", "content": "Answer in capitals."},
                    {"role": "user", "content": "Q: {{question}}"},
                ],
            },
            "invocation_parameters": {"type": "openai", "openai": {"temperature": 0.2}},
        },
    )
