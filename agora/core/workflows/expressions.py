"""The two small languages of a workflow step, both evaluated without ``eval``.

References, inside a step's ``input``: ``"${input.path}"`` or ``"${steps.<name>.result.path}"`` (also
``steps.<name>.state``). A string that is exactly one reference becomes the referenced value (any JSON); references
inside a longer string are replaced by their text. Path parts are keys, or list indexes (``rows.0.id``).

Conditions, a step's ``when``: Python-shaped expressions over ``input`` and ``steps`` with comparisons
(``== != < <= > >= in, not in``), ``and``/``or``/``not``, literals (strings, numbers, true/false/null and lists), and
attribute or subscript access (``steps.extract.result.count > 10 and "eu" in input.regions``). They are parsed with
``ast`` and walked over a whitelist of node types; anything else is refused when the workflow is created.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

REFERENCE = re.compile(r"\$\{([^{}]+)\}")
_COMPARE = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}  # fmt: skip
_CONSTANTS = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """A reference or condition that is not well formed, or names something that does not exist."""


def path_of(text: str) -> list[str]:
    """``steps.extract.result.rows`` → its parts, checked against what a step may read."""
    parts = [p.strip() for p in text.strip().split(".")]
    if not all(parts):
        raise ExpressionError(f"'{text}' has an empty part")
    if any(p.startswith("__") for p in parts):
        raise ExpressionError(f"'{text}' reads a name that no result has")
    if parts[0] == "input":
        return parts
    if parts[0] == "steps" and len(parts) >= 3 and parts[2] in ("result", "state"):
        return parts
    raise ExpressionError(f"'{text}' must start with input. or steps.<name>.result / steps.<name>.state")


def references(value: Any) -> Iterator[list[str]]:
    """Every reference path in a step input (nested anywhere in its JSON)."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield path_of(match.group(1))
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def lookup(context: dict[str, Any], path: list[str]) -> Any:
    """The value at ``path`` in ``{"input": ..., "steps": {...}}``; None where it does not exist (yet)."""
    value: Any = context
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def resolve(value: Any, context: dict[str, Any]) -> Any:
    """A step input with its references replaced by what they point to."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return lookup(context, path_of(whole.group(1)))
        return REFERENCE.sub(lambda m: _text(lookup(context, path_of(m.group(1)))), value)
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# -- conditions ---------------------------------------------------------------------------------------------------------


def parse_condition(text: str) -> ast.expr:
    """The condition's tree, checked node by node; an ExpressionError says what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"'{text}' does not parse: {exc.msg}") from None
    _check(tree)
    return tree


def condition_paths(tree: ast.expr) -> Iterator[list[str]]:
    """The ``input.…`` / ``steps.….result…`` paths a (checked) condition reads."""
    if isinstance(tree, (ast.Attribute, ast.Subscript)):
        path = _path(tree)
        if path is not None:
            yield path_of(".".join(path))
        return
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.expr):
            yield from condition_paths(child)


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand)
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise ExpressionError("only == != < <= > >= in and not in compare")
        for part in (node.left, *node.comparators):
            _check(part)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for item in node.elts:
            _check(item)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ExpressionError(f"the literal {node.value!r} is not allowed")
    elif isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            raise ExpressionError(f"'{node.id}' alone means nothing here: write input.… or steps.<name>.result…")
    elif isinstance(node, (ast.Attribute, ast.Subscript)):
        path = _path(node)
        if path is None:
            raise ExpressionError("only input.… and steps.<name>.result… can be read, with names and literal indexes")
        path_of(".".join(path))
    else:
        raise ExpressionError(f"{type(node).__name__} is not allowed in a condition")


def _path(node: ast.AST) -> list[str] | None:
    """``steps.x.result["rows"][0]`` → ["steps", "x", "result", "rows", "0"], or None for anything else."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _path(node.value)
        return None if base is None else [*base, node.attr]
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, (str, int)):
        base = _path(node.value)
        return None if base is None else [*base, str(node.slice.value)]
    return None


def evaluate(tree: ast.expr, context: dict[str, Any]) -> Any:
    if isinstance(tree, ast.BoolOp):
        values = (evaluate(v, context) for v in tree.values)
        return all(values) if isinstance(tree.op, ast.And) else any(values)
    if isinstance(tree, ast.UnaryOp):
        return not evaluate(tree.operand, context)
    if isinstance(tree, ast.Compare):
        left = evaluate(tree.left, context)
        for op, right_node in zip(tree.ops, tree.comparators, strict=True):
            right = evaluate(right_node, context)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:  # e.g. a result that is not there yet (None) compared with a number
                return False
            left = right
        return True
    if isinstance(tree, (ast.List, ast.Tuple)):
        return [evaluate(item, context) for item in tree.elts]
    if isinstance(tree, ast.Constant):
        return tree.value
    if isinstance(tree, ast.Name):
        return _CONSTANTS[tree.id]
    path = _path(tree)
    assert path is not None  # checked when parsed
    return lookup(context, path)
