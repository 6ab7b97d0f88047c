"""The code-block finder of saved documentation pages (tests/sdk/seed_page.py)."""

import pytest

from tests.sdk import seed_page

PAGE = """\
Batch Pattern
Evaluate spans, then upload.
# Run evaluations
async def evaluate(items):
# Fetch
traces = fetch(
limit=10,
)
for trace in traces:
if (trace.score
> 0.5):
print("good")
else:
print("bad")
# Keep it
results.append({
"id": trace.id,
})
# Upload
client.upload(results)
Response Structure
| Key | Description |
|---|
errors | List of {"span_id": ...} |
Export capabilities:
- Time-range filtering
from arize.spans.types import AnnotateRecordInput
"""


def test_blocks_tables_and_rebuilt_indentation():
    code, table, imports = seed_page.blocks_of(PAGE)
    assert (code.kind, code.heading, code.first_line) == ("python", "Batch Pattern", 3)
    assert code.code == (
        "# Run evaluations\n"
        "async def evaluate(items):\n"
        "    # Fetch\n"
        "    traces = fetch(\n"
        "        limit=10,\n"
        "    )\n"
        "    for trace in traces:\n"
        "        if (trace.score\n"
        "            > 0.5):\n"
        '            print("good")\n'
        "        else:\n"
        '            print("bad")\n'
        "        # Keep it\n"
        "        results.append({\n"
        '                "id": trace.id,\n'
        "            })\n"
        "    # Upload\n"
        "    client.upload(results)\n"
    )
    assert (table.kind, table.heading, table.lines[0]) == (
        "table",
        "Response Structure",
        "| Key | Description |",
    )
    assert (imports.kind, imports.first_line) == ("python", 27)
    assert seed_page.rewrite_imports(imports.code) == (
        "from evalhub_client.spans.types import AnnotateRecordInput\n"
    )
    assert seed_page.rewrite_imports("import arize_other\nx = 'from arize.y import z'\n") == (
        "import arize_other\nx = 'from arize.y import z'\n"
    )


def test_a_block_that_does_not_parse_is_an_error():
    with pytest.raises(seed_page.SeedPageError, match="line 2"):
        seed_page.blocks_of("Intro\nx = (1,\n2\n")
