"""The shape of the house: the core names no connector, and the modules depend one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "provisioner"
VENDORS = re.compile(r"onecloud|ytel|\bccs\b|clienttrack|\bccc\b", re.IGNORECASE)
# what may know a vendor by name: the vendors' own packages
OUTSIDE_CORE = ("connectors",)


def code_words(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every name, attribute, import and string in the module's code; docstrings
    and comments are prose, where an example vendor is fine."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            words.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            words.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Import):
            words += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append((node.lineno, node.value))
    return words


def test_the_core_names_no_connector():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in OUTSIDE_CORE:
            continue
        found += [f"{relative}:{line}: {word!r}" for line, word in code_words(path) if VENDORS.search(word)]
    assert not found, "\n".join(found)


def test_the_run_lock_does_not_import_the_state_db():
    # state.py takes its lock from runlock.py; the other way round was a cycle
    imported = {word for _, word in code_words(PACKAGE / "runlock.py") if word.startswith("state")
                or word.endswith(".state")}
    assert not imported
