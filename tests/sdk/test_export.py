"""Exports through the SDK and the ``evalhub`` command line, in every format."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from evalhub_client import NotFoundError, ValidationError
from evalhub_client.cli import main
from evalhub_client.spans import exports as sdk_exports

from tests import factories
from tests.sdk.factories import T0, span_frame


@pytest.fixture
def stored(client):
    """Nine spans in project p (three LLM spans), and one elsewhere."""
    client.spans.log("p", span_frame(9))
    factories.trace(project="other")
    return client


@pytest.mark.parametrize("export_format", ["jsonl", "csv", "parquet"])
def test_export_to_file_in_each_format(stored, tmp_path, export_format):
    path = stored.spans.export_to_file(
        "p",
        tmp_path / f"out.{export_format}",
        format=export_format,
        filter="span_kind == 'LLM'",
        start_time=T0 + timedelta(seconds=2),
    )
    assert path == tmp_path / f"out.{export_format}"
    assert not (tmp_path / f"out.{export_format}.part").exists()
    if export_format == "jsonl":
        spans = [json.loads(line) for line in path.read_text().splitlines()]
        ids = [s["context"]["span_id"] for s in spans]
        assert spans[0]["attributes"]["llm.model_name"] == "gpt-4o-mini"
    elif export_format == "csv":
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        ids = [row["context.span_id"] for row in rows]
        assert json.loads(rows[0]["metadata"])["region"] in ("eu-west", "us-east")
    else:
        table = pq.read_table(path)
        ids = table.column("context.span_id").to_pylist()
        assert str(table.schema.field("start_time").type) == "timestamp[us, tz=UTC]"
    assert ids == [f"{8:016x}", f"{5:016x}"]  # LLM spans from 2 s on, newest first


def test_export_to_df_types_and_batches(stored, monkeypatch):
    monkeypatch.setattr(sdk_exports, "DF_BATCH_ROWS", 4)  # several batches of rows
    frame = stored.spans.export_to_df("p")
    assert len(frame) == 9
    assert list(frame["context.span_id"]) == [f"{i:016x}" for i in range(9, 0, -1)]
    assert str(frame["start_time"].dtype) == "datetime64[us, UTC]"
    assert frame["start_time"].iloc[-1] == pd.Timestamp(T0)
    assert frame["latency_ms"].tolist()[-1] == 250.0
    llm = frame[frame["span_kind"] == "LLM"].iloc[0]
    assert llm["model_name"] == "gpt-4o-mini"
    assert llm["prompt_tokens"] == 120
    assert llm["metadata"] == {"region": "eu-west", "limits": {"max_tokens": 512}}
    assert llm["attributes"]["llm.input_messages.0.message.content"] == "Be brief."
    errors = frame[frame["status_code"] == "ERROR"]
    assert errors["output"].isna().all()

    window = stored.spans.export_to_df(
        "p", start_time=T0, end_time=T0 + timedelta(seconds=3), filter="name != 'llm'"
    )
    assert list(window["name"]) == ["step-2", "step-0"]
    empty = stored.spans.export_to_df("p", filter="name == 'nothing'")
    assert empty.empty
    assert "context.span_id" in empty.columns


def test_export_to_parquet_and_errors(stored, tmp_path, capsys):
    path = stored.spans.export_to_parquet("p", path=tmp_path / "spans.parquet", progress=True)
    assert pq.read_metadata(path).num_rows == 9
    assert "export p" in capsys.readouterr().err  # the progress bar
    stored.spans.export_to_parquet("p", path=tmp_path / "spans.parquet", progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValidationError) as bad:
        stored.spans.export_to_parquet("p", filter="latency >", path=tmp_path / "bad.parquet")
    assert "filter:" in bad.value.detail
    with pytest.raises(NotFoundError):
        stored.spans.export_to_parquet("nope", path=tmp_path / "none.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spans.parquet"]


def test_cli_export_and_list(stored, live_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVALHUB_BASE_URL", live_server.url)
    key = factories.api_key("cli")
    out = tmp_path / "llm.parquet"
    code = main(
        [
            "--api-key",
            key,
            "spans",
            "export",
            "--project",
            "p",
            "--filter",
            "span_kind == 'LLM'",
            "--format",
            "parquet",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert pq.read_table(out).column("name").to_pylist() == ["llm", "llm", "llm"]
    assert f"wrote {out}" in capsys.readouterr().err

    assert main(["--api-key", key, "spans", "list", "--project", "p", "--limit", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["context"]["span_id"] for line in lines] == [
        f"{i:016x}" for i in (9, 8, 7, 6)
    ]
    assert main(["--api-key", key, "spans", "list", "--project", "p", "--format", "csv"]) == 0
    listed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(listed) == 9

    assert main(["--api-key", key, "spans", "list", "--project", "nope"]) == 1
    assert "error: 404: project 'nope' not found" in capsys.readouterr().err


def test_cli_console_script(stored, live_server, tmp_path):
    script = Path(sys.executable).parent / "evalhub"
    out = tmp_path / "spans.jsonl"
    completed = subprocess.run(
        [
            str(script),
            "spans",
            "export",
            "--project",
            "p",
            "--format",
            "jsonl",
            "-o",
            str(out),
        ],
        env={
            **os.environ,
            "EVALHUB_BASE_URL": live_server.url,
            "EVALHUB_API_KEY": factories.api_key("script"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert len(out.read_text().splitlines()) == 9
