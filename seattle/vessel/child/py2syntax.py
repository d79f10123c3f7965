"""The original dialect's syntax pass: Python 2 text rewritten, in place, into text Python 3's parser accepts.

The first of the translator's two passes (`dialect` runs both). It reads the text once with a regular
expression that stops only where something may need rewriting (strings and comments are skipped whole), so
most of a program is copied without a Python-level step per token:

    `x`                            repr(x)
    a <> b                         a != b
    0L, 0777, 0x1FL                0, 0o777, 0x1F
    print x, y  /  print x,        print(x, y)  /  print(x, end=' ')
    print >>f, x  /  print         print(x, file=f)  /  print()
    exec code in ns                exec(code, ns), which the checker refuses as in the original
    ur'raw'                        r'raw' (where it holds no \\u escape, which only `ur` strings decoded)
    except E, e:                   except E as e:
    raise E, msg  /  raise E, V, T raise E(msg)  /  raise E(V).with_traceback(T), refused like any traceback use

A statement keyword (print, exec, raise, except) is rewritten only where a statement starts: the previous
character that is not a space is a line break, a `;` or a `:` (the keywords are reserved words in Python 2, so
they cannot appear anywhere else in a program that ran there). Such a statement is then read token by token up
to its end, to find its commas and brackets.

Every rewrite stays within its line and keeps every line break, so the output has the input's lines. Text the
pass does not understand is copied as it is and left to Python's parser to refuse, with its line. This module
is sans-IO and runs on the child side of the vessel, like the checker: it reads untrusted text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Where the fast scan stops: strings and comments (skipped whole), statement keywords, literals to rewrite,
#: `<>`, backticks, and a quote that starts no complete string (an unterminated string). A quote the scan
#: reaches outside strings and comments opens a string in any program that parses, so a string that does
#: not end there is an error at once: no string is searched for twice, and the scan stays linear. Strings are
#: matched as runs of plain characters between escapes, repeated possessively, so the regular expression
#: engine keeps no backtracking state per character or per escape of a long string.
_SPARSE = re.compile(
    r"""
    (?P<string>'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*+'''|\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*+\"\"\")
    |(?P<triple>'''|\"\"\")
    |(?P<line_string>'[^'\\\n]*(?:\\.[^'\\\n]*)*+'|"[^"\\\n]*(?:\\.[^"\\\n]*)*+")
    |(?P<comment>\#[^\n]*)
    |(?P<keyword>(?<![\w.])(?:print|exec|raise|except)(?!\w))
    |(?P<number>(?<![\w.])(?<![\d.][eE][-+])(?:0[xXoObB]?[0-9a-fA-F]+|[0-9]+)[lL](?![\w.])
               |(?<![\w.])(?<![\d.][eE][-+])0[0-9]+(?![\w.]))
    |(?P<ne><>)
    |(?P<tick>`)
    |(?P<quote>['"])
    """,
    re.VERBOSE | re.DOTALL,
)

#: Every token, for reading one statement: the same strings and comments, then names, numbers, line breaks,
#: continuations, brackets and single-character operators.
_FULL = re.compile(
    r"""
    (?P<string>[rRuUbB]{0,2}(?:'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*+'''|\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*+\"\"\"))
    |(?P<triple>[rRuUbB]{0,2}(?:'''|\"\"\"))
    |(?P<line_string>[rRuUbB]{0,2}(?:'[^'\\\n]*(?:\\.[^'\\\n]*)*+'|"[^"\\\n]*(?:\\.[^"\\\n]*)*+"))
    |(?P<comment>\#[^\n]*)
    |(?P<name>[^\W\d]\w*)
    |(?P<number>0[xX][0-9a-fA-F]+[lL]?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[jJlL]?)
    |(?P<newline>\n)
    |(?P<continuation>\\\n)
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
    |(?P<ne><>)
    |(?P<shift>>>)
    |(?P<tick>`)
    |(?P<op>\S)
    """,
    re.VERBOSE | re.DOTALL,
)

#: Inside a statement's brackets, once nothing more there can change its rewrite (below the first level, or
#: after the first level's first comma): only what the fast scan stops at, and brackets.
_NESTED = re.compile(
    _SPARSE.pattern.replace(r"|(?P<keyword>(?<![\w.])(?:print|exec|raise|except)(?!\w))", "")
    + r"|(?P<open>[(\[{])|(?P<close>[)\]}])",
    re.VERBOSE | re.DOTALL,
)
_OLD_OCTAL = re.compile(r"0[0-9]+")
#: Characters that end an operand: a backtick after one of these closes a `repr` instead of opening one.
_OPERAND_END = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_)]}'\"`")
#: Words that make a raise statement's exception an expression needing brackets before it is called.
_OPERATOR_WORDS = frozenset({"or", "and", "not", "if", "else", "lambda", "in", "is"})


class Py2SyntaxError(Exception):
    """Text the syntax pass cannot read (an unterminated string); `dialect` words it as a refusal."""

    def __init__(self, line: int, column: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.column = column
        self.reason = reason


def rewrite(text: str) -> str:
    """`text` (Python 2, line breaks already `\\n`) with its Python 2-only syntax spelled as Python 3."""
    return _Pass(text).run()


def _number(literal: str) -> str:
    if literal[-1] in "lL":
        literal = literal[:-1]
    if _OLD_OCTAL.fullmatch(literal) and literal.strip("0"):
        return "0o" + literal[1:]
    return literal


def _raw_unicode(text: str, prefix: int, string: str) -> bool:
    """Whether the `ur` at `prefix` is the prefix of `string` that Python 3 no longer takes, and dropping its `u`
    keeps the value: a raw string without \\u or \\U escapes (which only `ur` strings decoded)."""
    return (prefix == 0 or not (text[prefix - 1].isalnum() or text[prefix - 1] == "_")) and "\\u" not in string.lower()


@dataclass
class _Statement:
    """One print, exec, raise or except statement as it is read: indices into the output list."""

    keyword: str
    index: int
    last: int
    commas: list[int] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # [open, close (-1 while open), comma inside (0/1)]
    shift: int = -1
    word_in: int = -1
    compound: bool = False  # the raise statement's exception is more than a dotted name or call


class _Pass:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self.ticks = 0  # backticks opened and not yet closed

    def run(self) -> str:
        text, out = self.text, self.out
        pos = 0
        while True:
            match = _SPARSE.search(text, pos)
            if match is None:
                break
            start, end, kind = match.start(), match.end(), match.lastgroup
            out.append(text[pos:start])
            if kind == "keyword":
                if self._statement_starts(start):
                    pos = self._statement(match.group(), end)
                    continue
                out.append(match.group())
            elif kind == "number":
                out.append(_number(match.group()))
            elif kind == "ne":
                out.append("!=")
            elif kind == "tick":
                out.append(self._tick(start))
            elif kind == "quote":
                raise self._error(start, "unterminated string")
            elif kind == "triple":
                raise self._error(start, "unterminated triple-quoted string")
            else:
                if kind != "comment" and text[max(start - 2, 0) : start].lower() == "ur" and _raw_unicode(
                    text, start - 2, match.group()
                ):
                    out[-1] = out[-1][:-2] + text[start - 1]
                out.append(match.group())
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def _statement_starts(self, index: int) -> bool:
        text = self.text
        index -= 1
        while index >= 0 and text[index] in " \t\f":
            index -= 1
        return index < 0 or text[index] in "\n;:"

    def _tick(self, index: int) -> str:
        text = self.text
        before = index - 1
        while before >= 0 and text[before] in " \t\f":
            before -= 1
        if self.ticks and before >= 0 and text[before] in _OPERAND_END:
            self.ticks -= 1
            return ")"
        self.ticks += 1
        return "repr("

    def _error(self, index: int, reason: str) -> Py2SyntaxError:
        line_start = self.text.rfind("\n", 0, index) + 1
        return Py2SyntaxError(self.text.count("\n", 0, index) + 1, index - line_start + 1, reason)

    def _statement(self, keyword: str, pos: int) -> int:
        """Read one statement after its keyword (at `pos`), rewrite it into `out`, return where it ends."""
        text, out = self.text, self.out
        out.append(keyword)
        statement = _Statement(keyword, len(out) - 1, len(out) - 1)
        depth = 0
        while True:
            nested = depth > 1 or (depth == 1 and statement.groups[-1][2])
            match = (_NESTED if nested else _FULL).search(text, pos)
            if match is None:
                out.append(text[pos:])
                pos = len(text)
                break
            start, kind, token = match.start(), match.lastgroup, match.group()
            if depth == 0 and (kind == "newline" or token == ";" or (token == ":" and keyword == "except")):
                out.append(text[pos:start])
                pos = start
                break
            out.append(text[pos:start])
            index = len(out)
            pos = match.end()
            if kind in ("comment", "continuation", "newline"):
                out.append(token)
                continue
            if kind == "number":
                token = _number(token)
            elif kind in ("string", "line_string") and token[:2].lower() == "ur" and _raw_unicode(text, start, token):
                token = token[1:]
            elif kind == "ne":
                token = "!="
            elif (kind == "op" and token in "'\"") or kind == "quote":
                raise self._error(start, "unterminated string")
            elif kind == "triple":
                raise self._error(start, "unterminated triple-quoted string")
            out.append(token)
            if kind == "tick":
                out[index] = self._tick(start)
                kind = "open" if out[index] == "repr(" else "close"
            if kind == "open":
                depth += 1
                if depth == 1:
                    statement.groups.append([index, -1, 0])
            elif kind == "close":
                depth = max(depth - 1, 0)
                if depth == 0 and statement.groups and statement.groups[-1][1] < 0:
                    statement.groups[-1][1] = index
            elif token == ",":
                if depth == 0:
                    statement.commas.append(index)
                elif depth == 1 and statement.groups:
                    statement.groups[-1][2] = 1
            elif depth == 0:
                if kind == "shift" and statement.last == statement.index:
                    statement.shift = index
                elif kind == "name" and token == "in" and statement.word_in < 0:
                    statement.word_in = index
                if not statement.commas and (
                    (kind == "name" and token in _OPERATOR_WORDS) or (kind in ("op", "ne", "shift") and token != ".")
                ):
                    statement.compound = True
            statement.last = index
        self._finish(statement)
        return pos

    # --- the rewrites, once a statement's tokens are known -----------------------------------------------

    def _finish(self, statement: _Statement) -> None:
        if statement.keyword in ("print", "exec"):
            self._call(statement)
        elif statement.keyword == "raise":
            self._raise(statement)
        elif statement.commas:  # except E, e
            self.out[statement.commas[0]] = " as"

    def _whole_group(self, statement: _Statement) -> bool:
        """The arguments are one bracketed group without a comma at its top: `print (x)`, which stays."""
        first = statement.index + 2
        return (
            len(statement.groups) == 1 and statement.groups[0][0] == first and statement.groups[0][1] ==
            statement.last and not statement.groups[0][2] and self.out[first] == "("
        )

    def _drop_space(self, index: int) -> None:
        """Blank the whitespace at `index` unless it holds a line break (a continuation keeps its line)."""
        if index < len(self.out) and "\n" not in self.out[index] and not self.out[index].strip():
            self.out[index] = ""

    def _call(self, statement: _Statement) -> None:
        """print / exec as a call: `print x, y` → `print(x, y)`, `exec c in g` → `exec(c, g)`."""
        out, keyword = self.out, statement.keyword
        if statement.last == statement.index:
            out[statement.index] = keyword + "()"
            return
        if self._whole_group(statement):
            return
        out[statement.index] = keyword + "("
        self._drop_space(statement.index + 1)
        extra: list[str] = []
        commas = statement.commas
        if keyword == "exec":
            if statement.word_in >= 0:
                out[statement.word_in] = ","
                self._drop_space(statement.word_in - 1)
        else:
            if statement.shift >= 0:
                stop = next((comma for comma in commas if comma > statement.shift), statement.last + 1)
                extra.append("file=" + "".join(out[statement.shift + 1 : stop]).strip())
                for index in range(statement.shift, min(stop + 2, statement.last + 1)):
                    out[index] = "" if "\n" not in out[index] else "\n" * out[index].count("\n")
                commas = [comma for comma in commas if comma > stop]
                if stop > statement.last:
                    out[statement.last] += ", ".join(extra) + ")"
                    return
            if commas and commas[-1] == statement.last:
                out[statement.last] = ""
                self._drop_space(statement.last - 1)
                extra.insert(0, "end=' '")
        if extra:
            out[statement.last] += ", " + ", ".join(extra)
        out[statement.last] += ")"

    def _raise(self, statement: _Statement) -> None:
        """`raise E, V` → `raise E(V)`; a tuple V gives the arguments; `raise E, V, T` adds with_traceback(T)."""
        out, commas = self.out, statement.commas
        if not commas or commas[0] == statement.index + 2:  # no exception before the comma: Python refuses it
            return
        first = commas[0]
        if statement.compound:
            out[statement.index + 2] = "(" + out[statement.index + 2]
            out[first - 2] += ")"
        value_start = first + 2
        value_last = commas[1] - 2 if len(commas) > 1 else statement.last
        tuple_value = out[value_start] == "(" and any(
            group[0] == value_start and group[1] == value_last and (group[2] or group[1] == group[0] + 2)
            for group in statement.groups
        )
        self._drop_space(first - 1)
        self._drop_space(first + 1)
        out[first] = "" if tuple_value else "("
        if len(commas) > 1:
            out[commas[1]] = ("" if tuple_value else ")") + ".with_traceback("
            self._drop_space(commas[1] - 1)
            self._drop_space(commas[1] + 1)
            out[statement.last] += ")"
        elif not tuple_value:
            out[statement.last] += ")"
