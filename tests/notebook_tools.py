"""Helpers for the notebook tests: find exercises and swap each stub for its revealed reference solution."""
from __future__ import annotations

import ast
import re

import nbformat

_SOLUTION = re.compile(r"<details>.*?```python\n(?P<code>.*?)```.*?</details>", re.S)


def _is_stub(node) -> bool:
    """A function whose body is only ``raise NotImplementedError`` (the exercise left for the learner)."""
    return (isinstance(node, ast.FunctionDef) and len(node.body) == 1 and isinstance(node.body[0], ast.Raise)
            and "NotImplementedError" in ast.unparse(node.body[0]))


def exercises(nb) -> list[tuple[int, str, str]]:
    """``(cell index, function name, solution code)`` for every exercise stub followed by a revealed solution."""
    found = []
    for idx, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "NotImplementedError" not in cell.source:
            continue
        stubs = [n.name for n in ast.parse(cell.source).body if _is_stub(n)]
        after = next((c for c in nb.cells[idx + 1:] if c.cell_type == "markdown"), None)
        match = _SOLUTION.search(after.source) if after is not None else None
        for name in stubs:
            if match is None:
                raise AssertionError(f"exercise {name!r} (cell {idx}) has no revealed solution in the next markdown cell")
            found.append((idx, name, match.group("code")))
    return found


def with_solutions(nb):
    """A copy of ``nb`` in which every exercise stub is replaced by its reference solution."""
    nb = nbformat.from_dict(nb)
    for idx, name, solution in exercises(nb):
        cell = nb.cells[idx]
        tree = ast.parse(cell.source)
        lines = cell.source.splitlines()
        for node in tree.body:
            if _is_stub(node) and node.name == name:
                start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
                lines[start:node.end_lineno] = solution.rstrip("\n").splitlines()
                break
        cell.source = "\n".join(lines)
    return nb


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
