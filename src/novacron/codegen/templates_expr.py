"""Expression-level repair templates: operators, boundaries, off-by-one, arguments, variables, types.

Each template looks at the nodes on one suspicious line and proposes :class:`Edit` s.
They are general program-repair operators (as in GenProg/PAR/TBar mutation families),
not patterns of any particular corpus.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import libcst as cst

from novacron.codegen.mutate import Edit, LineNodes, walk

__all__ = ["EXPR_TEMPLATES"]

_CMP_ALTERNATIVES: dict[type[cst.BaseCompOp], tuple[type[cst.BaseCompOp], ...]] = {
    cst.LessThan: (cst.LessThanEqual, cst.GreaterThan, cst.NotEqual),
    cst.LessThanEqual: (cst.LessThan, cst.GreaterThanEqual),
    cst.GreaterThan: (cst.GreaterThanEqual, cst.LessThan, cst.NotEqual),
    cst.GreaterThanEqual: (cst.GreaterThan, cst.LessThanEqual),
    cst.Equal: (cst.NotEqual, cst.LessThanEqual, cst.GreaterThanEqual),
    cst.NotEqual: (cst.Equal,),
    cst.Is: (cst.IsNot,),
    cst.IsNot: (cst.Is,),
    cst.In: (cst.NotIn,),
    cst.NotIn: (cst.In,),
}
_BIN_ALTERNATIVES: dict[type[cst.BaseBinaryOp], tuple[type[cst.BaseBinaryOp], ...]] = {
    cst.Add: (cst.Subtract, cst.Multiply),
    cst.Subtract: (cst.Add,),
    cst.Multiply: (cst.Divide, cst.Add, cst.Power),
    cst.Divide: (cst.FloorDivide, cst.Multiply),
    cst.FloorDivide: (cst.Divide, cst.Modulo),
    cst.Modulo: (cst.FloorDivide,),
    cst.Power: (cst.Multiply,),
}
_AUG_ALTERNATIVES: dict[type[cst.BaseAugOp], tuple[type[cst.BaseAugOp], ...]] = {
    cst.AddAssign: (cst.SubtractAssign,),
    cst.SubtractAssign: (cst.AddAssign,),
    cst.MultiplyAssign: (cst.DivideAssign,),
}
_NON_COMMUTATIVE = (cst.Subtract, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)


def comparison_operators(ctx: LineNodes) -> Iterator[Edit]:
    """``<`` ↔ ``<=`` and friends, ``==`` ↔ ``!=``, ``is`` ↔ ``is not``, ``in`` ↔ ``not in``."""
    for node in ctx.exprs:
        if not isinstance(node, cst.Comparison):
            continue
        for i, comp in enumerate(node.comparisons):
            for alt in _CMP_ALTERNATIVES.get(type(comp.operator), ()):
                op = alt()
                new = node.with_changes(
                    comparisons=[*node.comparisons[:i], comp.with_changes(operator=op), *node.comparisons[i + 1 :]]
                )
                yield Edit(node, new, "comparison_operator", f"{type(comp.operator).__name__} → {alt.__name__}")


def boolean_and_negation(ctx: LineNodes) -> Iterator[Edit]:
    """``and`` ↔ ``or``; drop a ``not``; negate an ``if``/``while`` condition."""
    for node in ctx.exprs:
        if isinstance(node, cst.BooleanOperation):
            alt: cst.BaseBooleanOp = cst.Or() if isinstance(node.operator, cst.And) else cst.And()
            yield Edit(node, node.with_changes(operator=alt), "boolean_operator", "and ↔ or")
        elif isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            yield Edit(node, node.expression, "drop_negation", "remove `not`")
    st = ctx.statement
    if isinstance(st, cst.If | cst.While):
        negated = cst.UnaryOperation(cst.Not(), _paren(st.test))
        yield Edit(st.test, negated, "negate_condition", "negate the condition")


def arithmetic_operators(ctx: LineNodes) -> Iterator[Edit]:
    """Swap a binary or augmented-assignment operator for a related one."""
    for node in ctx.exprs:
        if isinstance(node, cst.BinaryOperation):
            for alt in _BIN_ALTERNATIVES.get(type(node.operator), ()):
                yield Edit(node, node.with_changes(operator=alt()), "arithmetic_operator", f"→ {alt.__name__}")
            if isinstance(node.operator, _NON_COMMUTATIVE):
                yield Edit(node, node.with_changes(left=node.right, right=node.left), "swap_operands", "swap operands")
        elif isinstance(node, cst.AugAssign):
            for aug in _AUG_ALTERNATIVES.get(type(node.operator), ()):
                yield Edit(node, node.with_changes(operator=aug()), "arithmetic_operator", f"→ {aug.__name__}")


def _paren(expr: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(expr, cst.Name | cst.Attribute | cst.Call | cst.Subscript | cst.Integer) or expr.lpar:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _plus(expr: cst.BaseExpression, n: int) -> cst.BaseExpression:
    if isinstance(expr, cst.Integer):
        value = int(expr.value, 0) + n
        return cst.Integer(str(value)) if value >= 0 else cst.UnaryOperation(cst.Minus(), cst.Integer(str(-value)))
    op: cst.BaseBinaryOp = cst.Add() if n > 0 else cst.Subtract()
    return cst.BinaryOperation(_paren(expr), op, cst.Integer(str(abs(n))))


def _boundary_exprs(ctx: LineNodes) -> Iterator[cst.BaseExpression]:
    for node in ctx.exprs:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in {"range", "len"}:
            if node.func.value == "len":
                yield node
            for arg in node.args:
                yield arg.value
        elif isinstance(node, cst.Subscript):
            for el in node.slice:
                if isinstance(el.slice, cst.Index):
                    yield el.slice.value
                elif isinstance(el.slice, cst.Slice):
                    yield from (b for b in (el.slice.lower, el.slice.upper) if b is not None)
        elif isinstance(node, cst.Comparison):
            yield node.left
            yield from (c.comparator for c in node.comparisons)
        elif isinstance(node, cst.Integer) and int(node.value, 0) <= 10_000:
            yield node
        elif isinstance(node, cst.Assign | cst.AnnAssign) and isinstance(node.value, cst.Name | cst.BinaryOperation):
            yield node.value  # ``low = mid`` where ``mid + 1`` was meant


def off_by_one(ctx: LineNodes) -> Iterator[Edit]:
    """``e`` → ``e + 1`` / ``e - 1`` for range bounds, indices, slice bounds, compared values, constants."""
    seen: set[int] = set()
    for expr in _boundary_exprs(ctx):
        if id(expr) in seen or (isinstance(expr, cst.SimpleString | cst.Name) and _is_bool_or_none(expr)):
            continue
        seen.add(id(expr))
        for n in (1, -1):
            yield Edit(expr, _plus(expr, n), "off_by_one", f"{'+' if n > 0 else '-'}1 on {_code(ctx, expr)}")


def _is_bool_or_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value in {"True", "False", "None"}


def _code(ctx: LineNodes, node: cst.CSTNode) -> str:
    return ctx.module.code_for_node(node).strip()[:60]


def swapped_arguments(ctx: LineNodes) -> Iterator[Edit]:
    """Swap two positional arguments of a call."""
    for node in ctx.exprs:
        if not isinstance(node, cst.Call):
            continue
        pos = [i for i, a in enumerate(node.args) if a.keyword is None and a.star == ""]
        for a, b in itertools.pairwise(pos):
            args = list(node.args)
            args[a], args[b] = args[b].with_changes(comma=args[a].comma), args[a].with_changes(comma=args[b].comma)
            yield Edit(node, node.with_changes(args=args), "swap_arguments", f"swap arguments {a} and {b}")


def _scope_names(ctx: LineNodes) -> list[str]:
    fn = ctx.function
    if fn is None:
        return []
    names: list[str] = [p.name.value for p in fn.params.params] + [p.name.value for p in fn.params.kwonly_params]
    for node in walk(fn.body):
        targets: list[cst.BaseExpression] = []
        if isinstance(node, cst.AssignTarget | cst.AnnAssign | cst.AugAssign | cst.For):
            targets = [node.target]
        for t in targets:
            for sub in walk(t):
                if isinstance(sub, cst.Name):
                    names.append(sub.value)
    return [n for n in dict.fromkeys(names) if n not in {"self", "cls"}]


def wrong_variable(ctx: LineNodes) -> Iterator[Edit]:
    """Replace a variable read on the line by another parameter or local of the function."""
    scope = _scope_names(ctx)
    if len(scope) < 2:
        return
    for node in ctx.exprs:
        if not isinstance(node, cst.Name) or node.value not in scope:
            continue
        parent = ctx.parents(node)
        if (isinstance(parent, cst.Attribute) and parent.attr is node) or (
            isinstance(parent, cst.Arg | cst.Param) and getattr(parent, "keyword", None) is node
        ):
            continue
        if isinstance(parent, cst.AssignTarget):
            continue
        for other in scope:
            if other != node.value:
                yield Edit(node, node.with_changes(value=other), "wrong_variable", f"{node.value} → {other}")


def type_conversions(ctx: LineNodes) -> Iterator[Edit]:
    """Convert an operand or argument with ``str``/``int``/``float`` (mixed-type arithmetic, concatenation)."""
    for node in ctx.exprs:
        operands: list[cst.BaseExpression] = []
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add | cst.Subtract | cst.Multiply):
            operands = [node.left, node.right]
        elif isinstance(node, cst.Call):
            operands = [a.value for a in node.args if a.keyword is None and a.star == ""]
        elif isinstance(node, cst.AugAssign):
            operands = [node.value]
        for expr in operands:
            for fn in ("str", "float", "int"):  # float() accepts every numeric text int() does
                wrapped = cst.Call(cst.Name(fn), [cst.Arg(expr)])
                yield Edit(expr, wrapped, "type_conversion", f"{fn}({_code(ctx, expr)})")


EXPR_TEMPLATES = (
    comparison_operators,
    off_by_one,
    boolean_and_negation,
    arithmetic_operators,
    swapped_arguments,
    wrong_variable,
    type_conversions,
)
