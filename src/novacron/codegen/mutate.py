"""The machinery under the repair templates: find nodes on a line, replace exactly one.

Every candidate is produced by replacing one libcst node of the parsed module (or one
statement by a few), then rendering the module again, so every candidate is valid
Python by construction; the rendered text is also compiled as a last check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

__all__ = ["Edit", "LineNodes", "apply_edit", "nodes_on_line"]

Replacement = cst.CSTNode | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``target`` with ``replacement``: one template's proposal."""

    target: cst.CSTNode
    replacement: Replacement
    template: str
    description: str


class _Collect(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, line: int) -> None:
        self.line = line
        self.exprs: list[cst.CSTNode] = []
        self.statements: list[cst.CSTNode] = []
        self.functions: list[cst.FunctionDef] = []
        self.loops: list[cst.While | cst.For] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        try:
            pos = self.get_metadata(PositionProvider, node)
        except KeyError:
            return True
        if not (pos.start.line <= self.line <= pos.end.line):
            return pos.start.line <= self.line  # nodes after the line cannot contain it
        if isinstance(node, cst.FunctionDef):
            self.functions.append(node)
        elif isinstance(node, cst.While | cst.For):
            self.loops.append(node)
        if isinstance(node, cst.SimpleStatementLine) or (
            isinstance(node, cst.If | cst.While | cst.For) and pos.start.line == self.line
        ):
            self.statements.append(node)
        elif pos.start.line == self.line or (isinstance(node, cst.BaseExpression) and pos.end.line == self.line):
            self.exprs.append(node)
        return True


@dataclass(frozen=True, slots=True)
class LineNodes:
    """What a template may look at around one suspicious line."""

    module: cst.Module
    line: int
    exprs: Sequence[cst.CSTNode]  # nodes that start on the line, outermost first
    statement: cst.CSTNode | None  # the innermost statement containing the line
    function: cst.FunctionDef | None  # the innermost enclosing function
    loop: cst.While | cst.For | None  # the innermost enclosing loop
    parents: Callable[[cst.CSTNode], cst.CSTNode | None]


def nodes_on_line(module: cst.Module, line: int) -> LineNodes:
    """Collect expressions, statement, function and loop around ``line``."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    collect = _Collect(line)
    wrapper.visit(collect)
    parent_map = wrapper.resolve(ParentNodeProvider)
    return LineNodes(
        module=module,
        line=line,
        exprs=collect.exprs,
        statement=collect.statements[-1] if collect.statements else None,
        function=collect.functions[-1] if collect.functions else None,
        loop=collect.loops[-1] if collect.loops else None,
        parents=parent_map.get,
    )


class _Replace(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, replacement: Replacement) -> None:
        self.target = target
        self.replacement = replacement
        self.done = False

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Replacement:  # type: ignore[override]
        if original_node is self.target and not self.done:
            self.done = True
            return self.replacement
        return updated_node


def apply_edit(module: cst.Module, edit: Edit) -> str | None:
    """Render the module with one node replaced; None if nothing changed or it does not compile."""
    t = _Replace(edit.target, edit.replacement)
    try:
        new = module.visit(t)
    except (cst.CSTValidationError, TypeError, ValueError):
        return None
    if not t.done:
        return None
    code = new.code
    if code == module.code:
        return None
    try:
        compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError):
        return None
    return code


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``node`` (itself included), depth first."""
    yield node
    for child in node.children:
        yield from walk(child)
