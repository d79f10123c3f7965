"""The original dialect: Repy programs in the original's Python 2 subset, translated to Python 3 before the check.

Translation is two passes over the text, both on CPython's own fast parts, and the result is Python 3 text with
the program's lines:

1. `py2syntax` rewrites what Python 3 cannot parse (print and exec statements, `except E, e`, `raise E, V`,
   backticks, `<>`, `0L`, `0777`), in place.
2. Python 3's parser (`ast.parse`, in C) reads that text, and one walk over the tree finds what parses in both
   languages but means something else in Python 3 (the table below). Each is rewritten in the text, at the
   node's own position, keeping the text of its parts as it was (so comments and line breaks inside stay).

It runs in the sandboxed child, on the same side as the checker and for the same reason: it parses untrusted
text, so it runs where the program could do no more harm than it can anyway, under the vessel's memory and CPU
allotment, after the program file's size limit (MAX_SOURCE_BYTES, enforced before any parsing). Its output is
handed to `checker.check_and_compile` like any Python 3 program: the translator is not a security boundary,
the checker is.

Line numbers are kept: every rewrite keeps the line breaks of what it replaces, so a checker refusal or a
traceback names the user's own line. Columns after a rewrite on the same line may shift (`print x` becomes
`print(x)`).

What the second pass rewrites (Python 2 → Python 3), as lib2to3's fixers of the same names did:

    d.has_key(k)  /  not d.has_key(k)   k in d  /  k not in d
    d.keys() / .items() / .values()     list(d.keys()) / ...; d.iteritems() → iter(d.items())
    range(n) / xrange(n)                list(range(n)) / range(n)
    map / filter / zip (as lists)       list(map(...)) / ...; map(None, x) → list(x)
    apply(f, args[, kwargs])            f(*args[, **kwargs])
    a / b, a /= b                       py2div(a, b), a = py2div(a, b): integer division stays integral

A list is not made where only iterating is asked for (`for k in d.iteritems()`, `sorted(map(f, x))`,
`x in range(n)`), as lib2to3 did. `x /= b` stays as it is when its target holds a call, which repeating would
run twice.

The names the translated program still needs at run time (xrange, long, unicode, basestring, cmp, reduce,
py2div, ...) are in `py2names`, added to the builtins of original-dialect programs.
"""

from __future__ import annotations

import ast
import hashlib
import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator

from seattle.vessel.child.checker import source_text
from seattle.vessel.child.py2syntax import Py2SyntaxError, rewrite
from seattle.vessel.errors import CodeUnsafeError

#: The helper the division rewrite calls; defined in py2names.
DIVISION_HELPER = "py2div"
#: Translations kept in memory, by the SHA-256 of the source: dylink and virtual namespaces translate the same
#: library text again and again.
CACHE_ENTRIES = 64

_lock = threading.Lock()
_cache: OrderedDict[bytes, str] = OrderedDict()


def translate(source: str | bytes, filename: str = "<program>") -> str:
    """`source`, a program in the original dialect, as Python 3 text with the same lines.

    Raises CodeUnsafeError("<filename>, line L, column C: ...") for text the original could not have run
    either (a syntax error, over the size limit, not UTF-8), like the checker does for Python 3 programs.
    """
    text = source_text(source, filename)
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
        translated = _translate_text(text, filename)
        _cache[key] = translated
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return translated


#: Added to a Python 3 program's syntax error when the program reads as the original dialect.
HINT = "this looks like original Repy (Python 2) code; run it with --dialect repyV2"
#: Programs with these names are the ones the original ran (`.r2py` for V2, `.repy` for V1).
ORIGINAL_SUFFIXES = (".r2py", ".repy")


def looks_original(source: str | bytes, filename: str, refusal: str) -> bool:
    """Whether a Python 3 program that the checker refused with `refusal` is original-dialect code instead:
    its name is `.r2py` or `.repy`, the refusal is a syntax error, and it translates. Never raises."""
    if not filename.endswith(ORIGINAL_SUFFIXES) or ": syntax error" not in refusal:
        return False
    try:
        translate(source, filename)
    except CodeUnsafeError:
        return False
    return True


def _translate_text(text: str, filename: str) -> str:
    # Python's parser reads \r\n and \r as \n too (in strings as well), so this changes no line and no value.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        text = rewrite(text)
        tree = ast.parse(text, filename=filename)
        edits = _Edits(text)
        edits.collect(tree)
        return edits.result()
    except Py2SyntaxError as exc:
        raise _unsafe(filename, exc.line, exc.column, f"syntax error: {exc.reason}") from None
    except SyntaxError as exc:
        raise _unsafe(filename, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise _unsafe(filename, 1, 1, "the program is nested too deeply to translate") from None
    except ValueError as exc:
        raise _unsafe(filename, 1, 1, f"cannot parse the program: {exc}") from None


def _unsafe(filename: str, line: int, column: int, reason: str) -> CodeUnsafeError:
    return CodeUnsafeError(f"{filename}, line {line}, column {column}: {reason} (original dialect)")


# --- the second pass: rewrites found on the tree, applied to the text -------------------------------------

#: What iterating asks of its argument, and nothing more (lib2to3's `consuming_calls`): a list is not needed.
_CONSUMING = frozenset({"sorted", "list", "set", "any", "all", "tuple", "sum", "min", "max", "enumerate"})
#: The same for map, filter and zip (lib2to3's `in_special_context`), which also counts iter() and str.join().
_ITERATING = frozenset({"iter", "list", "tuple", "sorted", "set", "sum", "any", "all", "enumerate"})
_CONSUMING_ITER = _CONSUMING | {"iter"}
_DICT_METHODS = frozenset({"keys", "items", "values", "iterkeys", "iteritems", "itervalues",
                           "viewkeys", "viewitems", "viewvalues"})
_CALLS = frozenset({"range", "xrange", "map", "filter", "zip", "apply"})
#: Parents whose operators bind tighter than `in`: a rewritten has_key under them gets brackets.
_TIGHT_PARENTS = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.Attribute, ast.Subscript, ast.Starred, ast.Await)
#: Argument kinds that need brackets before `in` (lib2to3's has_key fixer bracketed the same).
_LOOSE_ARGUMENTS = (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)
#: A token in the text between two nodes: a comment (skipped whole) or one character.
_GAP_TOKEN = re.compile(rb"#[^\n]*|\S")
#: The fields of each node type that can hold nodes (names, operators and contexts are not walked).
_LEAF_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "name", "arg", "kind", "type_comment", "is_async",
                          "level", "module", "conversion", "names"})
_FIELDS: dict[type[ast.AST], tuple[str, ...]] = {}

#: A rewrite's output: literal bytes, or a (start, end) span of the text, rendered with the rewrites inside it.
Piece = bytes | tuple[int, int]


class _Edits:
    """The rewrites of one program, by position in its UTF-8 text; applied innermost first, in one render."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        self.line_starts = [0]
        self.line_starts.extend(match.end() for match in re.finditer(b"\n", self.data))
        self.rewrites: list[tuple[int, int, list[Piece]]] = []
        self.starts: list[int] = []  # each rewrite's start, once they are sorted for the render

    # --- positions --------------------------------------------------------------------------------------

    def start(self, node: ast.AST) -> int:
        return self.line_starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined, no-any-return]

    def end(self, node: ast.AST) -> int:
        return self.line_starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined, no-any-return]

    def find(self, character: bytes, start: int, end: int) -> int:
        """The first `character` in the text between two nodes (comments skipped); -1 if there is none."""
        for match in _GAP_TOKEN.finditer(self.data, start, end):
            if match.group() == character:
                return match.start()
        return -1

    def trimmed(self, start: int, end: int) -> tuple[int, int]:
        """The span without the spaces and tabs at its ends."""
        data = self.data
        while start < end and data[start] in b" \t":
            start += 1
        while end > start and data[end - 1] in b" \t":
            end -= 1
        return start, end

    def lines_in(self, start: int, end: int) -> int:
        return self.data.count(b"\n", start, end)

    # --- finding the rewrites ---------------------------------------------------------------------------

    def collect(self, tree: ast.Module) -> None:
        """One walk over the tree (an explicit stack: any depth is safe), noting each rewrite."""
        skip: set[int] = set()  # has_key calls a `not` around them already rewrote
        for node, parent, role in _walk(tree):
            if isinstance(node, ast.BinOp):
                if isinstance(node.op, ast.Div):
                    self.division(node)
            elif isinstance(node, ast.AugAssign):
                if isinstance(node.op, ast.Div):
                    self.division_assignment(node)
            elif isinstance(node, ast.UnaryOp):
                if isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Call) and _is_has_key(node.operand):
                    skip.add(id(node.operand))
                    self.has_key(node.operand, parent, negated=node)
            elif isinstance(node, ast.Call) and id(node) not in skip:
                self.call(node, parent, role)

    def call(self, node: ast.Call, parent: ast.AST | None, role: str) -> None:
        func = node.func
        if type(func) is ast.Name and func.id in _CALLS:
            name = func.id
            if name == "xrange":
                self.rewrites.append((self.start(func), self.end(func), [b"range"]))
            elif name == "apply":
                self.apply_builtin(node)
            elif name == "map" and len(node.args) == 2 and _is_none(node.args[0]) and not node.keywords:
                self.map_none(node)
            elif name == "range":
                if not _iterated(node, parent, role, _CONSUMING, loops=True, membership=True):
                    self.wrap(node, b"list(")
            elif not _iterated(node, parent, role, _ITERATING, loops=True, joined=True):
                self.wrap(node, b"list(")
        elif type(func) is ast.Attribute and func.attr in _DICT_METHODS and not node.args and not node.keywords:
            self.dict_method(node, func, parent, role)
        elif _is_has_key(node):
            self.has_key(node, parent, negated=None)

    # --- the rewrites -----------------------------------------------------------------------------------

    def wrap(self, node: ast.Call, before: bytes) -> None:
        """`range(n)` → `list(range(n))`: the call's own text inside `before` and a closing bracket."""
        start, end = self.start(node), self.end(node)
        head = self.end(node.func)
        self.rewrites.append((start, end, [before, (start, head), (head, end), b")"]))

    def division(self, node: ast.BinOp) -> None:
        """`a / b` → `py2div(a, b)`; each side keeps its own text (brackets, comments, line breaks)."""
        start, end = self.start(node), self.end(node)
        slash = self.find(b"/", self.end(node.left), self.start(node.right))
        left = self.trimmed(start, slash)
        right = self.trimmed(slash + 1, end)
        self.rewrites.append((start, end, [DIVISION_HELPER.encode() + b"(", left, b", ", right, b")"]))

    def division_assignment(self, node: ast.AugAssign) -> None:
        """`x /= b` → `x = py2div(x, b)`, unless repeating the target would repeat a call."""
        start, end = self.start(node), self.end(node)
        target = (start, self.end(node.target))
        if b"(" in self.data[target[0] : target[1]]:
            return
        operator = self.find(b"/", target[1], self.start(node.value))
        value = self.trimmed(operator + 2, end)
        self.rewrites.append((start, end, [
            target, self.data[target[1] : operator], b"= " + DIVISION_HELPER.encode() + b"(", target, b", ", value,
            b")",
        ]))

    def has_key(self, node: ast.Call, parent: ast.AST | None, negated: ast.UnaryOp | None) -> None:
        """`d.has_key(k)` → `k in d`; under `not`, `k not in d`; bracketed where an operator binds tighter."""
        func = node.func
        assert isinstance(func, ast.Attribute)
        whole = negated if negated is not None else node
        start, end = self.start(whole), self.end(whole)
        call_start = self.start(node)
        dot = self.find(b".", self.end(func.value), self.end(func))
        receiver = self.trimmed(call_start, dot)
        opening = self.find(b"(", self.end(func), self.start(node.args[0]))
        argument = self.trimmed(opening + 1, self.end(node) - 1)
        key: list[Piece] = [argument]
        if isinstance(node.args[0], _LOOSE_ARGUMENTS) or _is_not(node.args[0]) or self.lines_in(*argument) or (
            b"#" in self.data[argument[0] : argument[1]]
        ):
            key = [b"(", argument, b")"]
        pieces: list[Piece] = [*key, b" not in " if negated is not None else b" in ", receiver]
        dropped = self.lines_in(start, end) - self.lines_in(*argument) - self.lines_in(*receiver)
        if dropped or isinstance(parent, _TIGHT_PARENTS) or (isinstance(parent, ast.Call) and parent.func is whole):
            pieces = [b"(", *pieces, b"\n" * dropped + b")"]
        self.rewrites.append((start, end, pieces))

    def dict_method(self, node: ast.Call, func: ast.Attribute, parent: ast.AST | None, role: str) -> None:
        """`d.keys()` → `list(d.keys())`; `d.iteritems()` → `iter(d.items())`; `d.viewkeys()` → `d.keys()`."""
        method = func.attr
        start, end = self.start(node), self.end(node)
        name_end = self.end(func)
        name_start = name_end - len(method)
        renamed = method[4:] if method.startswith(("iter", "view")) else method
        pieces: list[Piece] = [(start, name_start), renamed.encode(), (name_end, end)]
        if method.startswith("iter"):
            if not _iterated(node, parent, role, _CONSUMING_ITER, loops=True):
                pieces = [b"iter(", *pieces, b")"]
        elif renamed == method:
            if _iterated(node, parent, role, _CONSUMING):
                return
            pieces = [b"list(", *pieces, b")"]
        self.rewrites.append((start, end, pieces))

    def arguments(self, node: ast.Call) -> list[tuple[int, int]]:
        """Each argument's text, with its own brackets: what lies between the call's brackets and commas."""
        bounds = [self.find(b"(", self.end(node.func), self.start(node.args[0]))]
        for before, after in zip(node.args, node.args[1:], strict=False):
            bounds.append(self.find(b",", self.end(before), self.start(after)))
        last = self.end(node) - 1
        trailing = self.find(b",", self.end(node.args[-1]), last)
        bounds.append(trailing if trailing >= 0 else last)
        return [self.trimmed(bounds[i] + 1, bounds[i + 1]) for i in range(len(node.args))]

    def apply_builtin(self, node: ast.Call) -> None:
        """`apply(f, args, kwargs)` → `f(*args, **kwargs)`."""
        if node.keywords or not 1 <= len(node.args) <= 3 or any(isinstance(a, ast.Starred) for a in node.args):
            return
        start, end = self.start(node), self.end(node)
        spans = self.arguments(node)
        function: list[Piece] = [spans[0]]
        if not isinstance(node.args[0], (ast.Name, ast.Attribute, ast.Subscript, ast.Call)) or self.lines_in(*spans[0]):
            function = [b"(", spans[0], b")"]
        pieces: list[Piece] = [*function, b"("]
        if len(spans) > 1:
            pieces += [b"*", spans[1]]
        if len(spans) > 2:
            pieces += [b", **", spans[2]]
        kept = sum(self.lines_in(*span) for span in spans)
        pieces.append(b"\n" * (self.lines_in(start, end) - kept) + b")")
        self.rewrites.append((start, end, pieces))

    def map_none(self, node: ast.Call) -> None:
        """`map(None, x)` → `list(x)` (Python 3's map takes no None)."""
        start, end = self.start(node), self.end(node)
        sequence = self.arguments(node)[1]
        dropped = self.lines_in(start, end) - self.lines_in(*sequence)
        self.rewrites.append((start, end, [b"list(", sequence, b"\n" * dropped + b")"]))

    # --- applying them ----------------------------------------------------------------------------------

    def result(self) -> str:
        """The text with every rewrite applied."""
        if not self.rewrites:
            return self.data.decode("utf-8", "surrogatepass")
        self.rewrites.sort(key=lambda rewrite: (rewrite[0], -rewrite[1]))
        self.starts = [rewrite[0] for rewrite in self.rewrites]
        return self.render(0, len(self.data)).decode("utf-8", "surrogatepass")

    def render(self, start: int, end: int) -> bytes:
        """The text from `start` to `end` with every outermost rewrite inside it applied."""
        data, rewrites, starts = self.data, self.rewrites, self.starts
        out: list[bytes] = []
        position = start
        index = bisect_left(starts, start)
        while index < len(rewrites) and starts[index] < end:
            first, last, pieces = rewrites[index]
            if last > end or first < position:  # encloses this span (the rewrite being rendered), or inside one
                index += 1
                continue
            out.append(data[position:first])
            for piece in pieces:
                out.append(piece if isinstance(piece, bytes) else self.render(*piece))
            position = last
            index = bisect_left(starts, last, index + 1)
        out.append(data[position:end])
        return b"".join(out)


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, ast.AST | None, str]]:
    """Every node with its parent and the field it is in; iterative, so any depth is safe."""
    stack: list[tuple[ast.AST, ast.AST | None, str]] = [(tree, None, "")]
    pop, push = stack.pop, stack.append
    fields_of = _FIELDS
    while stack:
        item = pop()
        yield item
        node = item[0]
        kind = type(node)
        fields = fields_of.get(kind)
        if fields is None:
            fields = fields_of[kind] = tuple(name for name in kind._fields if name not in _LEAF_FIELDS)
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for child in value:
                    if isinstance(child, ast.AST):
                        push((child, node, name))
            elif isinstance(value, ast.AST):
                push((value, node, name))


def _iterated(node: ast.AST, parent: ast.AST | None, role: str, consumers: frozenset[str], *, loops: bool = False,
              membership: bool = False, joined: bool = False) -> bool:
    """Whether `node` only needs to be iterable where it stands (lib2to3's special contexts, which differ by
    fixer): the sole argument of one of `consumers`; with `loops`, a for loop's or comprehension's iterable;
    with `membership`, the right side of `in`; with `joined`, the sole argument of str.join and the first of
    sorted() or enumerate()."""
    if isinstance(parent, ast.Call):
        if role != "args":
            return False
        func, sole = parent.func, len(parent.args) == 1 and not parent.keywords
        if isinstance(func, ast.Name):
            return (sole and func.id in consumers) or (
                joined and func.id in ("sorted", "enumerate") and parent.args[0] is node
            )
        return joined and sole and isinstance(func, ast.Attribute) and func.attr == "join"
    if loops and isinstance(parent, (ast.For, ast.comprehension)) and role == "iter":
        return True
    return (
        membership and isinstance(parent, ast.Compare) and role == "comparators" and parent.comparators[0] is node
        and isinstance(parent.ops[0], ast.In)
    )


def _is_has_key(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "has_key"
        and len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred)
    )


def _is_not(node: ast.AST) -> bool:
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
