"""Reading a formula's text as R users write it, before formulaic sees it.

formulaic evaluates each factor as Python, so three habits of R users need care here:
``^`` inside a function call is a power in R but a bitwise xor in Python; ``(1 | team)``
is lme4's random-effect syntax, which formulaic reads as a multi-part formula; and a
column may be called ``center``, ``log`` or ``C``, names formulaic also gives to its
transforms. This module scans the formula once (quoted strings and backtick names are
skipped as wholes) and answers each question from the tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FormulaText", "clean_message", "scan_formula"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MARKERS = re.compile("[\u29da\u29db]")  # formulaic's highlight brackets around a span
_SPACE = re.compile(r"\s+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")


def clean_message(text: object) -> str:
    """``text`` on one line without terminal colour codes or highlight markers."""
    plain = _MARKERS.sub("", _ANSI.sub("", str(text)))
    return _SPACE.sub(" ", plain).strip()


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "number", "string", "backtick", "op"
    text: str
    start: int


@dataclass(frozen=True)
class FormulaText:
    """What the scan of one formula found.

    Attributes
    ----------
    python
        The formula with ``^`` inside every function call written ``**`` (R's power);
        everything else unchanged.
    bare_names
        Names used as values (not called, not keyword names); for a dotted name such
        as ``x.fillna`` its root ``x``.
    called
        Names called as functions, e.g. ``log`` in ``log(x)`` (dotted names excluded).
    bars
        Each ``|`` outside a function call, as the parenthesised group that holds it
        (``"(1 | team)"``), or the whole formula when it is not in parentheses.
    """

    python: str
    bare_names: frozenset[str]
    called: frozenset[str]
    bars: tuple[str, ...]


def _tokens(formula: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(formula)
    while i < n:
        ch = formula[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"`":
            j = i + 1
            while j < n and formula[j] != ch:
                j += 2 if formula[j] == "\\" and ch != "`" else 1
            j = min(j + 1, n)
            out.append(_Token("backtick" if ch == "`" else "string", formula[i:j], i))
            i = j
        elif (m := _NUMBER.match(formula, i)) is not None:
            out.append(_Token("number", m.group(), i))
            i = m.end()
        elif (m := _NAME.match(formula, i)) is not None:
            out.append(_Token("name", m.group(), i))
            i = m.end()
        else:
            width = 2 if formula.startswith(("**", "==", "!=", "<=", ">="), i) else 1
            out.append(_Token("op", formula[i:i + width], i))
            i += width
    return out


def scan_formula(formula: str) -> FormulaText:
    """Scan ``formula`` once; see :class:`FormulaText` for what is reported."""
    tokens = _tokens(formula)
    stack: list[tuple[bool, int]] = []  # (is a call, start) per open parenthesis
    pieces: list[str] = []
    last = 0
    bare: set[str] = set()
    called: set[str] = set()
    bars: list[str] = []
    for k, tok in enumerate(tokens):
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if tok.kind == "name":
            after = nxt.text if nxt is not None and nxt.kind == "op" else ""
            if after == "(" and "." not in tok.text:
                called.add(tok.text)
            elif after != "=" or not any(s[0] for s in stack):
                bare.add(tok.text.split(".", 1)[0])
        elif tok.text == "(":
            prev = tokens[k - 1] if k else None
            stack.append((prev is not None and prev.kind == "name", tok.start))
        elif tok.text == ")" and stack:
            stack.pop()
        elif tok.text == "^" and any(s[0] for s in stack):
            pieces.append(formula[last:tok.start] + "**")
            last = tok.start + 1
        elif tok.text == "|" and not any(s[0] for s in stack):
            bars.append(_group_text(formula, tokens, k, stack))
    pieces.append(formula[last:])
    return FormulaText("".join(pieces), frozenset(bare), frozenset(called), tuple(bars))


def _group_text(formula: str, tokens: list[_Token], k: int, stack: list[tuple[bool, int]]
                ) -> str:
    """The parenthesised group around token ``k`` (or the whole formula)."""
    if not stack:
        return formula.strip()
    start = stack[-1][1]
    depth = 0
    for tok in tokens[k:]:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            if depth == 0:
                return _SPACE.sub(" ", formula[start:tok.start + 1])
            depth -= 1
    return formula[start:].strip()
