"""The original dialect: Repy programs in the original's Python 2 subset, translated to Python 3 before the check.

Translation is mechanical and done by fissix (the maintained fork of lib2to3) with only the fixers the
original's subset needs, plus one of ours (classic division). It runs in the sandboxed child, on the same
side as the checker and for the same reason: it parses untrusted text, so it runs where the program could do
no more harm than it can anyway, under the vessel's memory and CPU allotment, after the program file's size
limit (MAX_SOURCE_BYTES, enforced before any parsing). Its output is handed to `checker.check_and_compile`
like any Python 3 program: the translator is not a security boundary, the checker is.

Line numbers are kept: every fixer used rewrites within a statement and keeps the line breaks and comments in
the tokens' prefixes, so a checker refusal or a traceback names the user's own line. Columns after a rewrite
on the same line may shift (`print x` becomes `print(x)`).

What the fixers do (Python 2 → Python 3):

    print x, y  /  print x,        print(x, y)  /  print(x, end=' ')
    except E, e:                   except E as e:
    raise E, msg                   raise E(msg)
    0L, 0777                       0, 0o777
    `x`                            repr(x)
    a <> b                         a != b
    d.has_key(k)                   k in d
    d.keys() / .items() / .iter*() list(d.keys()) / ... / iter(d.items())
    range(n) / xrange(n)           list(range(n)) / range(n)
    map / filter / zip (as lists)  list(map(...)) / ...
    apply(f, args)                 f(*args)
    exec code                      exec(code), which the checker refuses as in the original
    a / b, a /= b                  py2div(a, b), a = py2div(a, b): integer division stays integral

The names the translated program still needs at run time (xrange, long, unicode, basestring, cmp, reduce,
py2div, ...) are in `py2names`, added to the builtins of original-dialect programs.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from fissix import fixer_base, pygram, pytree
from fissix.fixer_util import Call, Comma, Name
from fissix.fixes import (
    fix_apply,
    fix_dict,
    fix_except,
    fix_exec,
    fix_filter,
    fix_has_key,
    fix_map,
    fix_ne,
    fix_numliterals,
    fix_print,
    fix_raise,
    fix_repr,
    fix_xrange,
    fix_zip,
)
from fissix.pgen2 import parse, token, tokenize
from fissix.refactor import RefactoringTool

from seattle.vessel.child.checker import source_text
from seattle.vessel.errors import CodeUnsafeError

#: The helper the division fixer calls; defined in py2names.
DIVISION_HELPER = "py2div"
#: Translations kept in memory, by the SHA-256 of the source: dylink and virtual namespaces translate the same
#: library text again and again.
CACHE_ENTRIES = 64


class FixClassicDivision(fixer_base.BaseFix):  # type: ignore[misc]
    """`a / b` → `py2div(a, b)`: Python 2's `/` floors when both sides are ints.

    A term like `a * b / c % d` is folded left to right, as Python evaluates it.
    """

    BM_compatible = True
    PATTERN = "term< any* '/' any* >"

    def transform(self, node: Any, results: dict[str, Any]) -> Any:
        children = node.children
        prefix = children[0].prefix
        folded = children[0].clone()
        folded.prefix = ""
        for operator, operand in zip(children[1::2], children[2::2], strict=True):
            right = operand.clone()
            if operator.type == token.SLASH:
                right.prefix = right.prefix if "\n" in right.prefix else " "
                folded = Call(Name(DIVISION_HELPER), [folded, Comma(), right])
            else:
                folded = pytree.Node(pygram.python_symbols.term, [folded, operator.clone(), right])
        folded.prefix = prefix
        return folded


class FixClassicDivisionAssign(fixer_base.BaseFix):  # type: ignore[misc]
    """`x /= b` → `x = py2div(x, b)`, when repeating the target cannot run code twice (no call in it); otherwise
    `/=` stays as it is (Python 3's true division)."""

    BM_compatible = False  # the bottom matcher does not find augmented-assignment operators
    PATTERN = "expr_stmt< any '/=' any >"

    def transform(self, node: Any, results: dict[str, Any]) -> Any:
        target, operator, value = node.children
        if "(" in str(target):
            return None
        left = target.clone()
        left.prefix = ""
        right = value.clone()
        right.prefix = " "
        call = Call(Name(DIVISION_HELPER), [left, Comma(), right], prefix=" ")
        return pytree.Node(node.type, [target.clone(), pytree.Leaf(token.EQUAL, "=", prefix=operator.prefix), call])


_FIXERS: tuple[type[Any], ...] = (
    fix_print.FixPrint, fix_except.FixExcept, fix_raise.FixRaise, fix_numliterals.FixNumliterals,
    fix_repr.FixRepr, fix_ne.FixNe, fix_has_key.FixHasKey, fix_dict.FixDict, fix_xrange.FixXrange,
    fix_map.FixMap, fix_filter.FixFilter, fix_zip.FixZip, fix_apply.FixApply, fix_exec.FixExec,
    FixClassicDivision, FixClassicDivisionAssign,
)  # fmt: skip


class _Translator(RefactoringTool):  # type: ignore[misc]
    """fissix's refactoring tool with our fixer classes instead of fixer modules found by name."""

    def get_fixers(self) -> tuple[list[Any], list[Any]]:
        fixers = [fixer_class(self.options, self.fixer_log) for fixer_class in _FIXERS]
        pre = sorted((f for f in fixers if f.order == "pre"), key=lambda f: f.run_order)
        post = sorted((f for f in fixers if f.order == "post"), key=lambda f: f.run_order)
        return pre, post


_lock = threading.Lock()
#: Built at import, which is in the zygote before it forks: every vessel inherits the fixers' compiled patterns
#: instead of compiling them on its start (about 6 ms), and pages it never writes stay shared.
_tool = _Translator([], {"print_function": False})
_cache: OrderedDict[bytes, str] = OrderedDict()


def _translator() -> _Translator:
    return _tool


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
    tool = _translator()
    if not text.endswith("\n"):
        text += "\n"  # lib2to3's grammar wants a final newline; it adds no line
    try:
        tree = tool.driver.parse_string(text)
        tool.refactor_tree(tree, filename)
    except parse.ParseError as exc:
        line, column = exc.context[1]
        raise _unsafe(filename, line, column + 1, f"syntax error at {exc.value!r}") from None
    except tokenize.TokenError as exc:
        message, (line, column) = exc.args
        raise _unsafe(filename, line, column + 1, f"syntax error: {message}") from None
    except IndentationError as exc:
        raise _unsafe(filename, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise _unsafe(filename, 1, 1, "the program is nested too deeply to translate") from None
    return str(tree)


def _unsafe(filename: str, line: int, column: int, reason: str) -> CodeUnsafeError:
    return CodeUnsafeError(f"{filename}, line {line}, column {column}: {reason} (original dialect)")

