"""The static safety checker: the first half of the vessel's language layer (the other is `safe_builtins`).

A program is parsed ONCE with `ast.parse`, that tree is walked, and the very same tree object is handed to
`compile()`. Nothing re-reads the source text, so no trick that makes text and tree disagree (a `coding:`
cookie such as utf-7, odd line endings, a BOM) can show the checker one program and run another.

What the walk enforces, and why:

* **An allowlist of node types.** Everything the checker does not know is refused, so syntax added by a
  later Python (t-strings, lazy imports, type parameters) stays out until someone audits it. Refused on
  purpose: imports (the API is already in the globals), `global`/`nonlocal`, generators and generator
  expressions (`gi_frame` leads to the caller's frames), async code (`cr_frame`, `ag_frame`), `with`,
  `match` (class patterns fetch attributes by name), `except*`, decorators (they receive the function
  object itself) and class keywords (`metaclass=` runs arbitrary code at class creation).
  `lambda` is allowed, unlike in Repy: it creates the same kind of function a `def` does, so it adds no
  capability, and Python 3 programs use it for sort keys and callbacks.
* **Every identifier.** Names, attributes, function, class and parameter names (positional-only and
  keyword-only too), keyword arguments and exception handler names. `__` reaches the object graph
  (`__class__`, `__globals__`, `__subclasses__`); the prefixes `f_ gi_ cr_ ag_ tb_ co_ im_ func_` reach
  frames, generators, tracebacks and code objects without any underscore. One leading underscore is allowed,
  as in the original (`_context`, `self._lock`): nothing a program can reach keeps private state under such
  a name (the API's objects keep theirs in closures, SafeDict under a name-mangled `__` slot, and
  tests/vessel/test_underscore_names.py holds every builtin and API object to that).
* **Exact names** with a known route out: see `_BANNED_NAMES`. Host builtins the vessel never provides
  (`open`, `eval`, `getattr`, ...) are also refused as variable names, so that a runtime mistake which
  leaked the real builtins into a namespace still could not be used by name.
* **`type`** may only be called with exactly one positional argument, `type(x)`; three-argument `type()`
  builds classes with any hook, and `t = type` would hide that call. The safe `type` refuses both at run
  time as well.
* **Dunder methods** may be *defined* directly in a class body for a short list of protocols (`__init__`,
  comparisons, containers, iteration); never hooks that run at odd times or change attribute lookup
  (`__del__`, `__getattribute__`, `__getattr__`, `__init_subclass__`, `__set_name__`, `__class_getitem__`,
  `__new__`, `__reduce__`, ...). They may never be *referenced*, with one exception: `super().__init__`,
  so a subclass can initialise its base. Zero-argument `super()` is bound to the program's own class and
  instance, so that only re-runs a base initialiser on the program's own object; `Base.__init__(obj)`
  stays refused, since `obj` could be an API object.
* **String constants** holding `__` are refused (docstrings excepted), as Repy did. No API takes an
  attribute name today, so this is defence in depth: if a later call or builtin ever did, a literal dunder
  name is the first thing an exploit would need. Ordinary programs rarely spell `__` in a string.
* **Limits**: the source size, the number of nodes and the nesting depth are bounded, and a parser bomb
  (100,000 nested parentheses) is a CodeUnsafeError, never a crash. Source text must be UTF-8 without NUL
  bytes, and a `coding:` declaration other than UTF-8 is refused outright.

Every refusal is a `CodeUnsafeError` reading "<filename>, line L, column C: <reason>", columns counted
from 1 like Python's own syntax errors.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seattle.vessel.child import lasterror
from seattle.vessel.errors import CodeUnsafeError

#: The largest program (in UTF-8 bytes) the checker reads at all.
MAX_SOURCE_BYTES = 1024 * 1024
#: The most AST nodes a program may have; a 1,200-line program has about 15,000.
MAX_NODES = 250_000
#: The deepest nesting of AST nodes. CPython's compiler gives up near 1,000 (it recurses in C); this stays
#: well below, whatever stack depth the caller runs at. Python's tokenizer already stops at 200 nested
#: brackets and 100 indentation levels, so only long operator chains or elif ladders come near it.
MAX_DEPTH = 500

_ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset({
    ast.Module,
    # statements
    ast.FunctionDef, ast.ClassDef, ast.Return, ast.Delete, ast.Assign, ast.AugAssign, ast.AnnAssign,
    ast.For, ast.While, ast.If, ast.Raise, ast.Try, ast.Assert, ast.Expr, ast.Pass, ast.Break, ast.Continue,
    # expressions
    ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.Compare, ast.Call, ast.FormattedValue, ast.JoinedStr,
    ast.Constant, ast.Attribute, ast.Subscript, ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice,
    # pieces of the above
    ast.comprehension, ast.ExceptHandler, ast.arguments, ast.arg, ast.keyword,
    ast.Load, ast.Store, ast.Del,
    ast.And, ast.Or,
    ast.Add, ast.Sub, ast.Mult, ast.MatMult, ast.Div, ast.Mod, ast.Pow, ast.LShift, ast.RShift, ast.BitOr,
    ast.BitXor, ast.BitAnd, ast.FloorDiv,
    ast.Invert, ast.Not, ast.UAdd, ast.USub,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})  # fmt: skip

_ASYNC = "async code is not allowed (coroutine frames lead out of the program)"
#: Why well-known node types are refused; anything else unknown gets a generic reason.
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Import: "import statements are not allowed (the vessel API is already in the program's globals)",
    ast.ImportFrom: "import statements are not allowed (the vessel API is already in the program's globals)",
    ast.Global: "'global' statements are not allowed (share state through mycontext)",
    ast.Nonlocal: "'nonlocal' statements are not allowed",
    ast.Yield: "generators ('yield') are not allowed (their frames lead out of the program)",
    ast.YieldFrom: "generators ('yield from') are not allowed (their frames lead out of the program)",
    ast.GeneratorExp: "generator expressions are not allowed; use a list comprehension",
    ast.Await: _ASYNC,
    ast.AsyncFunctionDef: _ASYNC,
    ast.AsyncFor: _ASYNC,
    ast.AsyncWith: _ASYNC,
    ast.With: "'with' statements are not allowed",
    ast.Match: "'match' statements are not allowed (class patterns fetch attributes by name)",
    ast.TryStar: "'except*' is not allowed",
}

#: Dunder methods a class body may define: ordinary protocols that run only when the program itself uses
#: its objects. Hooks that run at odd times or change lookup (`__del__`, `__getattr__`, ...) are not here.
ALLOWED_DUNDER_METHODS = frozenset({
    "__init__", "__iter__", "__next__", "__str__", "__repr__", "__len__", "__eq__", "__ne__", "__hash__",
    "__lt__", "__le__", "__gt__", "__ge__", "__contains__", "__getitem__", "__setitem__", "__bool__",
})  # fmt: skip

_INTERNAL_PREFIXES = ("f_", "gi_", "cr_", "ag_", "tb_", "co_", "im_", "func_")

#: Names refused wherever they appear, each with the route out it would open.
_BANNED_NAMES: dict[str, str] = {
    "format": "str.format and format() traverse attributes named inside the format string",
    "format_map": "str.format_map traverses attributes named inside the format string",
    "mro": "type.mro() hands out the class hierarchy up to object",
    "obj": "AttributeError.obj hands back the object an attribute lookup failed on",
    # Repy banned these two (repy_v1#120: bugs in codecs reached by name). Kept for parity; programs
    # convert with bytes(text, "utf-8") and str(data, "utf-8"), which use the same codec registry, so
    # this narrows that surface rather than closing it.
    "encode": "Repy forbids encode(); use bytes(text, 'utf-8')",
    "decode": "Repy forbids decode(); use str(data, 'utf-8')",
    "with_traceback": "it attaches tracebacks, which lead to frames",
    "cell_contents": "closure cells hold the variables of other functions",
}

#: Host builtins the safe builtins never provide, refused as variable names too (defence in depth).
HOST_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "globals", "locals", "vars", "dir", "getattr", "setattr", "delattr",
    "hasattr", "breakpoint", "input", "help", "memoryview", "exit", "quit",
})  # fmt: skip

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)


@dataclass(frozen=True)
class _Position:
    line: int
    column: int  # counted from 1


class _Refused(Exception):
    """A rule failed at a node; `check_and_compile` adds the position and raises CodeUnsafeError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_and_compile(source: str | bytes, filename: str = "<program>") -> types.CodeType:
    """Check `source` against the vessel's language rules and compile the checked tree.

    Raises CodeUnsafeError("<filename>, line L, column C: <reason>") for any refused construct, syntax
    error, over-limit program or undecodable text; TypeError if `source` is not an exact str or bytes
    (a subclass could present one text to the checker and another to the compiler).
    """
    if type(filename) is not str:
        raise TypeError(f"filename must be a str, not {type(filename).__name__}")
    text = source_text(source, filename)
    try:
        tree = ast.parse(text, filename=filename, mode="exec")
    except SyntaxError as exc:
        raise _unsafe(filename, _syntax_position(exc), f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise _unsafe(filename, _Position(1, 1), "the program is nested too deeply to parse") from None
    except ValueError as exc:
        raise _unsafe(filename, _Position(1, 1), f"cannot parse the program: {exc}") from None
    handlers = _Walker(filename, text).check(tree)
    lasterror.instrument(handlers)
    try:
        return compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _unsafe(filename, _syntax_position(exc), f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise _unsafe(filename, _Position(1, 1), "the program is nested too deeply to compile") from None
    except ValueError as exc:
        raise _unsafe(filename, _Position(1, 1), f"cannot compile the program: {exc}") from None


def _unsafe(filename: str, position: _Position, reason: str) -> CodeUnsafeError:
    return CodeUnsafeError(f"{filename}, line {position.line}, column {position.column}: {reason}")


def _syntax_position(exc: SyntaxError) -> _Position:
    return _Position(exc.lineno or 1, exc.offset or 1)


def _text_position(text: str, index: int) -> _Position:
    lines = _LINE_BREAK.split(text[:index])
    return _Position(len(lines), len(lines[-1]) + 1)


def source_text(source: str | bytes, filename: str) -> str:
    """The program as text: UTF-8, within the size limit, no NUL, no foreign coding declaration.

    CodeUnsafeError otherwise. The original dialect's translator reads programs through this too.
    """
    if type(source) is bytes:
        if len(source) > MAX_SOURCE_BYTES:
            raise _unsafe(filename, _Position(1, 1), _too_large(len(source)))
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            line_start = source.rfind(b"\n", 0, exc.start) + 1
            position = _Position(source.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
            raise _unsafe(filename, position, f"the program is not valid UTF-8 ({exc.reason})") from None
    elif type(source) is str:
        if len(source) > MAX_SOURCE_BYTES:  # every character is at least one byte
            raise _unsafe(filename, _Position(1, 1), _too_large(len(source)))
        try:
            size = len(source.encode("utf-8"))
        except UnicodeEncodeError as exc:
            position = _text_position(source, exc.start)
            reason = "the program holds a lone surrogate, which is not valid Unicode"
            raise _unsafe(filename, position, reason) from None
        if size > MAX_SOURCE_BYTES:
            raise _unsafe(filename, _Position(1, 1), _too_large(size))
        text = source
    else:
        raise TypeError(f"source must be str or bytes, not {type(source).__name__}")
    text = text.removeprefix("\ufeff")
    nul = text.find("\0")
    if nul >= 0:
        raise _unsafe(filename, _text_position(text, nul), "the program contains a NUL character")
    _check_coding_cookie(text, filename)
    return text


def _too_large(size: int) -> str:
    return f"the program is {size} bytes long; the limit is {MAX_SOURCE_BYTES}"


def _check_coding_cookie(text: str, filename: str) -> None:
    """Refuse a `coding:` declaration other than UTF-8 on either of the first two lines.

    The checker reads the text as UTF-8 whatever the declaration says, but a declaration such as utf-7 or
    unicode_escape means the file shows a reader (and any tool that honours it) a different program.
    Lines are split both the way Python's tokenizer does and the way `str.splitlines` does, so no
    unusual line break hides a declaration from this test.
    """
    for lines in (_LINE_BREAK.split(text, maxsplit=2)[:2], text.splitlines()[:2]):
        for number, line in enumerate(lines, start=1):
            match = _CODING_COOKIE.match(line)
            if match is None:
                continue
            encoding = match.group(1).lower().replace("_", "-")
            if encoding not in ("utf-8", "utf8") and not encoding.startswith("utf-8-"):
                position = _Position(number, match.start(1) + 1)
                reason = f"coding declaration {match.group(1)!r}: programs must be UTF-8"
                raise _unsafe(filename, position, reason)


#: Per node type: its fields (in source order, reversed so that a stack pops children in source order) and
#: whether it has a position. Filled on first sight of each type.
_SHAPES: dict[type[ast.AST], tuple[tuple[str, ...], bool]] = {}


def _shape(kind: type[ast.AST]) -> tuple[tuple[str, ...], bool]:
    shape = _SHAPES[kind] = (tuple(reversed(kind._fields)), "lineno" in kind._attributes)
    return shape


class _Walker:
    """One walk over one tree: an explicit stack (no recursion, so any depth is safe to walk)."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.lines = _LINE_BREAK.split(text)
        # Nodes a parent already vouched for: docstrings, dunder method definitions, `type` callees.
        self.docstrings: set[int] = set()
        self.methods: set[int] = set()
        self.type_callees: set[int] = set()

    def check(self, tree: ast.Module) -> list[ast.ExceptHandler]:
        """Walk the whole tree once; return its except handlers (for `lasterror`) if every rule holds."""
        # Each entry: a node, its depth, and the nearest node (itself or an ancestor) that has a position.
        stack: list[tuple[ast.AST, int, ast.AST]] = [(tree, 1, tree)]
        pop, push = stack.pop, stack.append
        count = 0
        handlers: list[ast.ExceptHandler] = []
        # A parent is visited before its children, but a child often comes first in the text
        # (`a._b.__c`), so the walk goes on and the problem that comes first in the source is reported.
        first: tuple[tuple[int, int], ast.AST, str] | None = None
        while stack:
            node, depth, anchor = pop()
            kind = type(node)
            fields, positioned = _SHAPES.get(kind) or _shape(kind)
            if positioned:
                anchor = node
            count += 1
            if count > MAX_NODES:
                reason = f"the program has more than {MAX_NODES} syntax nodes"
                raise _unsafe(self.filename, self._position(anchor), reason)
            if depth > MAX_DEPTH:
                reason = f"the program nests deeper than {MAX_DEPTH} levels"
                raise _unsafe(self.filename, self._position(anchor), reason)
            try:
                self._check_node(node)
            except _Refused as refusal:
                key = _source_order(anchor)
                if first is None or key < first[0]:
                    first = (key, anchor, refusal.reason)
            if kind is ast.ExceptHandler:
                handlers.append(node)  # type: ignore[arg-type]
            depth += 1
            for name in fields:
                value = getattr(node, name, None)
                if type(value) is list:
                    for child in reversed(value):
                        if isinstance(child, ast.AST):
                            push((child, depth, anchor))
                elif isinstance(value, ast.AST):
                    push((value, depth, anchor))
        if first is not None:
            raise _unsafe(self.filename, self._position(first[1]), first[2])
        return handlers

    def _check_node(self, node: ast.AST) -> None:
        kind = type(node)
        if kind not in _ALLOWED_NODES:
            raise _Refused(_REFUSED_NODES.get(kind, f"{kind.__name__} syntax is not allowed"))
        rule = _RULES.get(kind)
        if rule is not None:
            rule(self, node)

    def _position(self, node: ast.AST) -> _Position:
        """Where to point at `node`: for an attribute, its name after the dot; for most nodes, their start.

        Computed only for the node that is reported. The AST counts columns in UTF-8 bytes; the message
        counts characters, like Python's own syntax errors.
        """
        line, offset = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is None or offset is None:
            return _Position(1, 1)
        column = self._characters(line, offset)
        end_line, end_offset = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        if isinstance(node, ast.Attribute) and end_line is not None and end_offset is not None:
            text = self._line(end_line)
            dot = text.rfind(".", 0, self._characters(end_line, end_offset))
            if dot >= 0 and (end_line != line or dot >= column):
                after_dot = text[dot + 1 :]
                name_start = dot + 1 + len(after_dot) - len(after_dot.lstrip(" \t\f"))
                return _Position(end_line, name_start + 1)
        return _Position(line, column + 1)

    def _line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def _characters(self, line: int, byte_offset: int) -> int:
        return len(self._line(line).encode("utf-8")[:byte_offset].decode("utf-8", "ignore"))

    # --- rules per node type ---------------------------------------------------------------------------

    def _module(self, node: ast.Module) -> None:
        self._note_docstring(node.body)

    def _function(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            raise _Refused("decorators are not allowed")
        if id(node) not in self.methods or node.name not in ALLOWED_DUNDER_METHODS:
            _check_variable(node.name, "function name")
        self._note_docstring(node.body)

    def _class(self, node: ast.ClassDef) -> None:
        if node.decorator_list:
            raise _Refused("decorators are not allowed")
        if node.keywords:
            raise _Refused("class keywords (metaclass=, **kwargs) are not allowed")
        if any(isinstance(base, ast.Starred) for base in node.bases):
            raise _Refused("starred class bases (class C(*bases)) are not allowed")
        _check_variable(node.name, "class name")
        self.methods.update(id(item) for item in node.body if isinstance(item, ast.FunctionDef))
        self._note_docstring(node.body)

    def _arg(self, node: ast.arg) -> None:
        _check_variable(node.arg, "parameter name")

    def _keyword(self, node: ast.keyword) -> None:
        if node.arg is not None:
            _check_identifier(node.arg, "keyword argument")

    def _except_handler(self, node: ast.ExceptHandler) -> None:
        if node.name is not None:
            _check_variable(node.name, "exception name")

    def _attribute(self, node: ast.Attribute) -> None:
        if node.attr == "__init__" and _is_zero_argument_super(node.value):
            return
        _check_identifier(node.attr, "attribute")

    def _name(self, node: ast.Name) -> None:
        if node.id == "type":
            if id(node) not in self.type_callees:
                raise _Refused("'type' may only be called directly, with one argument: type(x)")
            return
        _check_variable(node.id, "name")

    def _call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "type":
            if len(node.args) != 1 or isinstance(node.args[0], ast.Starred) or node.keywords:
                raise _Refused("type() takes exactly one positional argument in a vessel")
            self.type_callees.add(id(node.func))

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if id(node) in self.docstrings:
            return
        if (isinstance(value, str) and "__" in value) or (isinstance(value, bytes) and b"__" in value):
            raise _Refused("string constants containing '__' are not allowed (docstrings excepted)")

    def _comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            raise _Refused(_ASYNC)

    def _note_docstring(self, body: list[ast.stmt]) -> None:
        first = body[0].value if body and isinstance(body[0], ast.Expr) else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            self.docstrings.add(id(first))


#: The extra check for each node type that needs one; each rule takes the node type it is filed under.
_RULES: dict[type[ast.AST], Callable[[_Walker, Any], None]] = {
    ast.Module: _Walker._module,
    ast.FunctionDef: _Walker._function,
    ast.ClassDef: _Walker._class,
    ast.arg: _Walker._arg,
    ast.keyword: _Walker._keyword,
    ast.ExceptHandler: _Walker._except_handler,
    ast.Attribute: _Walker._attribute,
    ast.Name: _Walker._name,
    ast.Call: _Walker._call,
    ast.Constant: _Walker._constant,
    ast.comprehension: _Walker._comprehension,
}


def _is_zero_argument_super(node: ast.expr) -> bool:
    """`super()` exactly: the one way a subclass's __init__ may reach its base class's."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and not node.args
        and not node.keywords
    )


def _source_order(node: ast.AST) -> tuple[int, int]:
    """A sort key for where a node's problem lies: an attribute's name ends the attribute, others start it.

    Raw (line, byte offset) pairs order correctly within a line, so no text is decoded for the key.
    """
    if isinstance(node, ast.Attribute) and node.end_lineno is not None and node.end_col_offset is not None:
        return (node.end_lineno, node.end_col_offset)
    return (getattr(node, "lineno", 1), getattr(node, "col_offset", 0))


def _check_identifier(name: str, what: str) -> None:
    """The rules for any identifier: attributes and keyword arguments as much as variables."""
    if "__" in name:
        raise _Refused(f"{what} {name!r} is not allowed: names containing '__' reach interpreter internals")
    for prefix in _INTERNAL_PREFIXES:
        if name.startswith(prefix):
            raise _Refused(
                f"{what} {name!r} is not allowed: the prefix {prefix!r} names frame, code, generator or "
                "traceback internals"
            )
    why = _BANNED_NAMES.get(name)
    if why is not None:
        raise _Refused(f"{what} {name!r} is not allowed: {why}")


def _check_variable(name: str, what: str) -> None:
    """Identifiers that bind or read a variable: also no host builtins and no rebinding of `type`."""
    if name == "_":
        return
    _check_identifier(name, what)
    if name in HOST_BUILTINS:
        raise _Refused(f"{what} {name!r} is not allowed: a host builtin that vessel programs do not get")
    if name == "type":
        raise _Refused(f"{what} 'type' is not allowed: 'type' is reserved for the one-argument type(x)")
