"""A Griffe extension for the API reference: docstring examples become code blocks.

Our docstrings show examples as doctests (``>>>`` lines, then the expected output) in
their prose, where tests/test_docs.py runs them. Markdown would read those lines as
nested quotes, so each run of them becomes a ``pycon`` code block, without the doctest
directives (``# doctest: +SKIP``), which are for the test runner, not the reader.
"""

from __future__ import annotations

import re
from typing import Any, List

import griffe

_PROMPT = re.compile(r"^(\s*)>>> ")
_DIRECTIVE = re.compile(r"\s*# doctest: [+-].*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def fence_doctests(text: str) -> str:
    """`text` with each block of ``>>>`` lines (and the output under them) fenced."""
    lines = text.split("\n")
    out: List[str] = []
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        prompt = None if in_fence else _PROMPT.match(line)
        if prompt is None:
            out.append(line)
            i += 1
            continue
        indent = prompt.group(1)
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(_DIRECTIVE.sub("", lines[i]))
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fences the doctest examples of every docstring the reference renders."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>> " in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
