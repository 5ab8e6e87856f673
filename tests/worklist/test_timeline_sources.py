"""Every sentence the code writes into a case's timeline has its message id in apps.worklist.timeline, so
that it reads in the reader's language: the calls to case_event_add are read from the sources."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

from django.conf import settings

from apps.worklist.timeline import timeline_match

# Sentences that are the user's own words only (a reason typed by a radiologist): nothing to translate.
FREE_TEXT = {"X: X"}


def _samples(node: ast.expr) -> set[str] | None:
    """The texts an expression can produce, every interpolated value as "X"; None when it is not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.JoinedStr):
        parts: list[set[str]] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append({str(value.value)})
            else:
                parts.append({"X"})
        return {"".join(p) for p in itertools.product(*parts)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _samples(node.left), _samples(node.right)
        return None if left is None or right is None else {a + b for a in left for b in right}
    if isinstance(node, ast.IfExp):
        body, orelse = _samples(node.body), _samples(node.orelse)
        return None if body is None or orelse is None else body | orelse
    if isinstance(node, ast.Subscript):
        return _samples(node.value)
    return None


def _timeline_sentences() -> list[tuple[str, str]]:
    found = []
    for path in sorted(Path(settings.BASE_DIR, "apps").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "case_event_add":
                for kw in node.keywords:
                    if kw.arg == "message":
                        for sample in _samples(kw.value) or ():
                            found.append((f"{path.name}:{node.lineno}", sample))
    return found


def test_every_timeline_sentence_of_the_code_has_a_message_id() -> None:
    sentences = _timeline_sentences()
    assert len(sentences) > 20  # the reader found the calls
    unknown = [(where, s) for where, s in sentences if s not in FREE_TEXT and timeline_match(s) is None]
    assert not unknown, ("timeline sentences without a message id in apps/worklist/timeline.py (add them, "
                         f"and their French): {unknown}")
