"""The code blocks of a documentation page saved as plain text (a seed page).

The saved pages have lost their code fences, their blank lines and their indentation, so the
blocks are found again from the text:

- A code block is a run of lines that are Python: a line that starts a statement (it compiles
  once its open brackets are closed and a ``:`` is given a body), a comment, ``else:`` and the
  like after code, and every line inside brackets opened before. Prose ("List Spans",
  "Export capabilities:") and table rows ("str | string |") do not compile.
- A table is a run of lines with ``|`` that are not code (kept so a test can say why it runs
  nothing there).
- Indentation is rebuilt: the body of a line ending in ``:`` is indented; ``else`` / ``elif`` /
  ``except`` / ``finally`` go back to their ``if`` / ``try``; a ``for`` / ``if`` / ``while`` /
  ``with`` / ``try`` body ends at the first comment after one of its statements (documentation
  starts a new step with a comment) or at the end of the block; a ``def`` / ``class`` body runs
  to the end of the block.

Every block this returns parses as Python (``ast.parse``), or ``SeedPageError`` says where not.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = set(_OPENERS.values())
_CONTINUATIONS = ("else", "elif", "except", "finally")
_DEFINITIONS = re.compile(r"(async\s+def|def|class)\b")
_HEADING = re.compile(r"^[A-Z][^.|]*(?<![.:])$")  # "Log Spans Only", not "Export capabilities:"
_IMPORT = re.compile(r"^(\s*)(from|import)\s+arize(?=[.\s])")


class SeedPageError(ValueError):
    """A block that does not parse once rebuilt: the extraction rules need a look."""


@dataclass(frozen=True)
class Block:
    kind: str  # "python" or "table"
    heading: str  # the last heading-like prose line before the block (its section)
    first_line: int  # 1-based line of the page
    code: str

    @property
    def lines(self) -> list[str]:
        return self.code.splitlines()


def _scan(line: str, stack: list[str]) -> str:
    """Update the open brackets of ``stack`` by ``line``; return the line without a trailing
    comment. Strings are single-line ('...' or "...", with escapes), as in the pages."""
    code = []
    quote: str | None = None
    escaped = False
    for char in line:
        if quote is not None:
            code.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char == "#":
            break
        code.append(char)
        if char in "'\"":
            quote = char
        elif char in _OPENERS:
            stack.append(_OPENERS[char])
        elif char in _CLOSERS and stack and stack[-1] == char:
            stack.pop()
    return "".join(code).rstrip()


def _starts_statement(line: str, in_code: bool) -> bool:
    text = line.strip()
    if not text:
        return False
    if text.startswith("#"):
        return True
    if in_code and re.match(rf"({'|'.join(_CONTINUATIONS)})\b", text):
        return True
    stack: list[str] = []
    code = _scan(text, stack)
    closed = code + "".join(reversed(stack))
    # A compound statement's header may go on past the line: ``if (a`` / ``and b):``.
    candidates = [closed + " pass"] if code.endswith(":") and not stack else [closed]
    if stack:
        candidates.append(closed + ": pass")
    for candidate in candidates:
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        return True
    return False


@dataclass
class _Open:
    """A compound statement whose body is being read."""

    level: int  # its own indentation level
    definition: bool  # def / class: the body runs to the end of the block
    statements: int = 0  # in its body so far


def _reindent(lines: list[str]) -> str:
    """Indentation for lines that lost it (see the module's docstring)."""
    out: list[str] = []
    open_: list[_Open] = []
    stack: list[str] = []  # brackets open in the current statement
    statement = ""  # the current statement's first line

    def indent(level: int, text: str) -> None:
        out.append("    " * level + text)

    def ended(code: str) -> None:
        """A statement ended (its brackets closed): a ``:`` opens a body."""
        if code.endswith(":"):
            open_.append(_Open(len(open_), bool(_DEFINITIONS.match(statement))))

    for raw in lines:
        text = raw.strip()
        if stack:  # inside brackets: a level per open bracket, closers back out
            indent(len(open_) + len(stack) - (1 if text[:1] in _CLOSERS else 0), text)
            code = _scan(text, stack)
            if not stack:
                ended(code)
            continue
        if text.startswith("#"):
            if open_ and not open_[-1].definition and open_[-1].statements:
                open_.pop()  # a comment after a loop's statements starts the next step
            indent(len(open_), text)
            continue
        statement = text
        if re.match(rf"({'|'.join(_CONTINUATIONS)})\b", text):
            while open_ and open_[-1].definition:
                open_.pop()
            level = open_.pop().level if open_ else 0
            indent(level, text)
            open_.append(_Open(level, definition=False))
            continue
        if open_:
            open_[-1].statements += 1
        indent(len(open_), text)
        code = _scan(text, stack)
        if not stack:
            ended(code)
    return "\n".join(out) + "\n"


def blocks_of(text: str) -> list[Block]:
    """The code blocks and tables of a saved page, in page order."""
    found: list[Block] = []
    lines = text.splitlines()
    heading = ""
    current: list[str] = []
    start = 0
    stack: list[str] = []
    table: list[str] = []

    def flush() -> None:
        nonlocal current, table
        if current:
            code = _reindent(current)
            try:
                ast.parse(code)
            except SyntaxError as exc:
                raise SeedPageError(f"block at line {start + 1} ({heading}): {exc}") from exc
            found.append(Block("python", heading, start + 1, code))
        if table:
            found.append(Block("table", heading, start + 1, "\n".join(table) + "\n"))
        current, table = [], []

    for number, line in enumerate(lines):
        if stack or _starts_statement(line, in_code=bool(current)):
            if not current:
                flush()
                start = number
            current.append(line)
            _scan(line.strip(), stack)
            continue
        if "|" in line:
            if not table:
                flush()
                start = number
            table.append(line)
            continue
        flush()
        if _HEADING.match(line.strip()):
            heading = line.strip()
    flush()
    return found


def rewrite_imports(code: str) -> str:
    """The Arize SDK's imports made EvalHub's: ``arize`` → ``evalhub_client``, only on import
    lines (``from arize.spans.types import X`` → ``from evalhub_client.spans.types import X``)."""
    return "".join(_IMPORT.sub(r"\1\2 evalhub_client", line) for line in code.splitlines(True))


def page(path: Path) -> list[Block]:
    return blocks_of(path.read_text(encoding="utf-8"))


__all__ = ["Block", "SeedPageError", "blocks_of", "page", "rewrite_imports"]
