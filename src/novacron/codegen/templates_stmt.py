"""Statement-level repair templates: guards, returns, loop increments, timeouts, retries, resources.

Statements are rebuilt from source text with :func:`libcst.parse_statement`, so the
result is always a valid statement; :func:`~novacron.codegen.mutate.apply_edit` also
compiles every candidate module before it is offered.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import libcst as cst

from novacron.codegen.mutate import Edit, LineNodes, walk

_EQ = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
__all__ = ["STMT_TEMPLATES"]

_BLOCKING = {
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "request",
    "urlopen",
    "create_connection",
    "run",
    "check_output",
    "check_call",
    "call",
    "communicate",
    "wait",
    "join",
    "acquire",
    "recv",
    "HTTPConnection",
    "HTTPSConnection",
    "SMTP",
    "FTP",
}  # (calls and constructors of the standard library and requests/httpx that take a timeout)
_STR_METHODS = {"upper", "lower", "strip", "split", "startswith", "endswith", "replace", "format", "encode", "title"}
_DICT_METHODS = {"get", "items", "keys", "values"}
_TRANSIENT = "(ConnectionError, TimeoutError, OSError)"
_ZERO = {"int": "0", "float": "0.0", "str": '""', "list": "[]", "dict": "{}", "bool": "False"}


def _src(ctx: LineNodes, node: cst.CSTNode) -> str:
    return textwrap.dedent(ctx.module.code_for_node(node)).strip("\n")


def _stmt(code: str) -> cst.BaseStatement:
    return cst.parse_statement(code + "\n")


def _exits(ctx: LineNodes) -> list[str]:
    """How a guard leaves: ``continue`` inside a loop body, else returns of plausible empties."""
    out = ["continue"] if ctx.loop is not None and ctx.statement is not ctx.loop else []
    if ctx.function is not None:
        out.append("return None")
        ann = ctx.function.returns
        if ann is not None and isinstance(ann.annotation, cst.Name) and ann.annotation.value in _ZERO:
            out.append(f"return {_ZERO[ann.annotation.value]}")
        for node in walk(ctx.function.body):
            if isinstance(node, cst.Return) and isinstance(node.value, cst.Integer | cst.SimpleString | cst.List):
                out.append(f"return {ctx.module.code_for_node(node.value)}")
    return list(dict.fromkeys(out))


def _guardable(ctx: LineNodes) -> list[tuple[str, str]]:
    """(expression, kind) pairs on the line that can be None or missing."""
    out: list[tuple[str, str]] = []
    for node in ctx.exprs:
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name | cst.Attribute | cst.Subscript):
            out.append((ctx.module.code_for_node(node.value), "none"))
        elif isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            base = ctx.module.code_for_node(node.value)
            key = ctx.module.code_for_node(node.slice[0].slice.value)
            out += [(base, "none"), (f"{key}|{base}", "key")]
        elif isinstance(node, cst.Name) and node.value not in {"None", "True", "False"}:
            parent = ctx.parents(node)
            if isinstance(parent, cst.BinaryOperation | cst.Comparison | cst.ComparisonTarget):
                out.append((node.value, "none"))
    return list(dict.fromkeys(out))


def guards(ctx: LineNodes) -> Iterator[Edit]:
    """Insert ``if x is None: <exit>`` / ``if k not in d: <exit>`` before the statement."""
    st = ctx.statement
    if not isinstance(st, cst.SimpleStatementLine):
        return
    for expr, kind in _guardable(ctx):
        if kind == "none":
            cond, what = f"{expr} is None", f"guard against {expr} being None"
        else:
            key, base = expr.split("|", 1)
            cond, what = f"{key} not in {base}", f"guard against a missing key {key}"
            if _looks_like_index(key):
                cond, what = f"not -len({base}) <= {key} < len({base})", f"guard index {key} against {base}'s length"
        for leave in _exits(ctx):
            guard = _stmt(f"if {cond}:\n    {leave}")
            yield Edit(st, cst.FlattenSentinel([guard, st]), "guard", f"{what}, then `{leave}`")


def _looks_like_index(key: str) -> bool:
    return key.lstrip("-").isdigit() or key in {"i", "j", "k", "n", "idx", "index", "pos", "position"}


def safe_access(ctx: LineNodes) -> Iterator[Edit]:
    """``d[k]`` → ``d.get(k[, default])``; ``x.m()`` on a str → ``(x or "").m()``; ``x.a`` → conditional."""
    for node in ctx.exprs:
        parent = ctx.parents(node)
        if isinstance(node, cst.Subscript) and not isinstance(parent, cst.AssignTarget | cst.Del):
            idx = node.slice[0].slice if len(node.slice) == 1 else None
            if isinstance(idx, cst.Index):
                key = ctx.module.code_for_node(idx.value)
                base = ctx.module.code_for_node(node.value)
                for default in ("", ", 0", ', ""'):
                    code = f"{base}.get({key}{default})"
                    yield Edit(node, cst.parse_expression(code), "missing_key", f"→ {code}")
        elif isinstance(node, cst.Attribute) and not isinstance(parent, cst.AssignTarget):
            base = ctx.module.code_for_node(node.value)
            if node.attr.value in _STR_METHODS:
                yield Edit(node.value, cst.parse_expression(f'({base} or "")'), "none_default", f'{base} or ""')
            elif node.attr.value in _DICT_METHODS:
                yield Edit(node.value, cst.parse_expression(f"({base} or {{}})"), "none_default", f"{base} or {{}}")
            elif not isinstance(parent, cst.Call):
                # In arithmetic a missing value counts as 0; elsewhere it stays None.
                fallback = "0" if isinstance(parent, cst.BinaryOperation) else "None"
                code = f"({ctx.module.code_for_node(node)} if {base} is not None else {fallback})"
                yield Edit(
                    node, cst.parse_expression(code), "none_conditional", f"{base}.{node.attr.value} only if set"
                )
    st = ctx.statement
    if isinstance(st, cst.For) and isinstance(st.iter, cst.Name | cst.Attribute | cst.Subscript | cst.Call):
        base = ctx.module.code_for_node(st.iter)
        yield Edit(st.iter, cst.parse_expression(f"({base} or [])"), "none_default", f"iterate {base} or []")


def division_guard(ctx: LineNodes) -> Iterator[Edit]:
    """``a / b`` → ``(a / b if b else 0)`` for division and modulo."""
    for node in ctx.exprs:
        if isinstance(node, cst.BinaryOperation) and isinstance(
            node.operator, cst.Divide | cst.FloorDivide | cst.Modulo
        ):
            den = ctx.module.code_for_node(node.right)
            code = f"({ctx.module.code_for_node(node)} if {den} else 0)"
            yield Edit(node, cst.parse_expression(code), "division_guard", f"divide only when {den} is non-zero")


def handle_errors(ctx: LineNodes) -> Iterator[Edit]:
    """Wrap the statement in ``try``/``except (ValueError, TypeError)`` that skips or returns."""
    st = ctx.statement
    if not isinstance(st, cst.SimpleStatementLine) or ctx.function is None:
        return
    body = textwrap.indent(_src(ctx, st), "    ")
    for leave in _exits(ctx)[:2]:
        code = f"try:\n{body}\nexcept (ValueError, TypeError, KeyError):\n    {leave}"
        yield Edit(st, _stmt(code), "handle_error", f"skip bad input with `{leave}`")


def missing_return(ctx: LineNodes) -> Iterator[Edit]:
    """A function that computes a value and falls off its end: return a local."""
    fn = ctx.function
    if fn is None or not isinstance(fn.body, cst.IndentedBlock) or not fn.body.body:
        return
    last = fn.body.body[-1]
    if isinstance(last, cst.SimpleStatementLine) and any(isinstance(s, cst.Return | cst.Raise) for s in last.body):
        return
    names: list[str] = []
    for node in walk(fn.body):
        if isinstance(node, cst.AssignTarget | cst.AugAssign | cst.AnnAssign) and isinstance(node.target, cst.Name):
            names.append(node.target.value)
    for name in list(dict.fromkeys(reversed(names)))[:3]:
        ret = _stmt(f"return {name}")
        body = fn.body.with_changes(body=[*fn.body.body, ret])
        yield Edit(fn.body, body, "missing_return", f"return {name} at the end of {fn.name.value}")


def _assigned(node: cst.CSTNode, name: str) -> bool:
    for sub in walk(node):
        if isinstance(sub, cst.AugAssign | cst.AssignTarget):
            target = sub.target
            if isinstance(target, cst.Name) and target.value == name:
                return True
    return False


def loop_increment(ctx: LineNodes) -> Iterator[Edit]:
    """A ``while`` loop whose counter is not advanced on some path: advance it."""
    loop = ctx.statement if isinstance(ctx.statement, cst.While) else ctx.loop
    if not isinstance(loop, cst.While) or not isinstance(loop.body, cst.IndentedBlock):
        return
    counters = [
        n.value for n in walk(loop.test) if isinstance(n, cst.Name) and n.value not in {"True", "False", "None", "len"}
    ]
    for name in dict.fromkeys(counters):
        for step in (f"{name} += 1", f"{name} -= 1"):
            if not _assigned(loop.body, name):
                body = loop.body.with_changes(body=[*loop.body.body, _stmt(step)])
                yield Edit(loop.body, body, "loop_increment", f"`{step}` at the end of the loop")
            for node in walk(loop.body):
                if isinstance(node, cst.SimpleStatementLine) and any(isinstance(s, cst.Continue) for s in node.body):
                    yield Edit(
                        node, cst.FlattenSentinel([_stmt(step), node]), "loop_increment", f"`{step}` before continue"
                    )


def timeout_argument(ctx: LineNodes) -> Iterator[Edit]:
    """A blocking call without ``timeout=``: pass the function's timeout parameter, or 10 s."""
    scope = []
    if ctx.function is not None:
        scope = [p.name.value for p in (*ctx.function.params.params, *ctx.function.params.kwonly_params)]
    values = [n for n in scope if "timeout" in n] or ["10"]
    for node in ctx.exprs:
        if not isinstance(node, cst.Call) or any(a.keyword and a.keyword.value == "timeout" for a in node.args):
            continue
        name = node.func.attr.value if isinstance(node.func, cst.Attribute) else getattr(node.func, "value", "")
        if name in _BLOCKING:
            for value in values:
                arg = cst.Arg(cst.parse_expression(value), keyword=cst.Name("timeout"), equal=_EQ)
                yield Edit(node, node.with_changes(args=[*node.args, arg]), "timeout", f"{name}(…, timeout={value})")


def retry_wrapper(ctx: LineNodes) -> Iterator[Edit]:
    """Retry a statement three times on transient errors (connection reset, timeout)."""
    st = ctx.statement
    if not isinstance(st, cst.SimpleStatementLine) or ctx.function is None:
        return
    inner = _src(ctx, st)
    done = "" if any(isinstance(s, cst.Return) for s in st.body) else "\n        break"
    code = (
        f"for _attempt in range(3):\n    try:\n{textwrap.indent(inner, '        ')}{done}\n"
        f"    except {_TRANSIENT}:\n        if _attempt == 2:\n            raise"
    )
    yield Edit(st, _stmt(code), "retry", "retry up to 3 times on transient errors")


def close_resources(ctx: LineNodes) -> Iterator[Edit]:
    """``open(…)`` used without ``with``: close it deterministically."""
    st = ctx.statement
    if not isinstance(st, cst.SimpleStatementLine) or len(st.body) != 1:
        return
    small = st.body[0]
    for node in ctx.exprs:
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "open"):
            continue
        parent = ctx.parents(node)
        if isinstance(small, cst.Assign) and small.value is node and len(small.targets) == 1:
            yield from _with_rest(ctx, st, node, ctx.module.code_for_node(small.targets[0].target))
        elif isinstance(parent, cst.Attribute):
            rest = _src(ctx, st).replace(ctx.module.code_for_node(node), "_fh", 1)
            code = f"with {ctx.module.code_for_node(node)} as _fh:\n{textwrap.indent(rest, '    ')}"
            yield Edit(st, _stmt(code), "close_resource", "use the file in a with block")


def _with_rest(ctx: LineNodes, st: cst.SimpleStatementLine, call: cst.Call, name: str) -> Iterator[Edit]:
    block = ctx.parents(st)
    if not isinstance(block, cst.IndentedBlock | cst.Module):
        return
    stmts = list(block.body)
    i = next(n for n, s in enumerate(stmts) if s is st)
    rest = [s for s in stmts[i + 1 :] if f"{name}.close()" not in ctx.module.code_for_node(s)]
    inner = "\n".join(_src(ctx, s) for s in rest) or "pass"
    with_stmt = _stmt(f"with {ctx.module.code_for_node(call)} as {name}:\n{textwrap.indent(inner, '    ')}")
    yield Edit(
        block, block.with_changes(body=[*stmts[:i], with_stmt]), "close_resource", f"open {name} in a with block"
    )


STMT_TEMPLATES = (
    guards,
    safe_access,
    division_guard,
    handle_errors,
    missing_return,
    loop_increment,
    timeout_argument,
    retry_wrapper,
    close_resources,
)
