"""The grammar a formula in an analysis plan must follow.

A plan is data, and a formula in it must not be a way to run code: formulaic, which
builds the designs, evaluates each factor as a Python expression. So before a plan's
formula reaches a fitter it is checked here against a small grammar of column names,
numbers, the model operators and a short list of transforms, and anything else is
rejected with a :class:`~crtstats.exceptions.PlanError` that names what was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crtstats.exceptions import PlanError

__all__ = ["ALLOWED_TRANSFORMS", "check_formula", "formula_columns"]

#: Functions a plan's formula may apply to one column.
ALLOWED_TRANSFORMS = (
    "C", "center", "scale", "log", "exp", "np.log", "np.log1p", "np.exp", "np.sqrt",
)

_TOKEN = re.compile(
    r"[ \t\r\n]*(?:(?P<name>[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)?)"
    r"|(?P<number>[0-9]+(?:\.[0-9]+)?)"
    r"|(?P<op>\*\*|[~+\-*/:^(),]))"
)
_MAX_LENGTH = 500


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(formula: str, where: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    stripped = formula.rstrip(" \t\r\n")
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if match is None or match.end() == pos:
            rest = stripped[pos:].lstrip(" \t\r\n")
            raise PlanError(
                f"{where}: formula {formula!r} has {rest[:1]!r} at position "
                f"{len(stripped) - len(rest) + 1}, which a plan's formula "
                "may not contain; use column names, numbers, the operators "
                "~ + - * / : ** ^ ( ) and the transforms "
                f"{', '.join(ALLOWED_TRANSFORMS)}."
            )
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; collects the column names used."""

    def __init__(self, tokens: list[_Token], formula: str, where: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.formula = formula
        self.where = where
        self.columns: list[str] = []

    def fail(self, what: str) -> PlanError:
        token = self.tokens[self.i] if self.i < len(self.tokens) else None
        found = f"{token.text!r} at position {token.pos + 1}" if token else "the end"
        return PlanError(
            f"{self.where}: formula {self.formula!r}: expected {what}, found {found}. A plan's "
            "formula is 'response ~ terms' built from column names, numbers, the operators "
            f"+ - * / : ** ^ and parentheses, and the transforms {', '.join(ALLOWED_TRANSFORMS)}."
        )

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == text:
            self.i += 1
            return True
        return False

    def formula_(self) -> None:
        self.factor()
        if not self.take("~"):
            raise self.fail("'~' after the response")
        self.expr()
        if self.peek() is not None:
            raise self.fail("an operator or the end of the formula")

    def expr(self) -> None:
        self.term()
        while self.take("+") or self.take("-"):
            self.term()

    def term(self) -> None:
        self.power()
        while self.take("*") or self.take(":") or self.take("/"):
            self.power()

    def power(self) -> None:
        self.factor()
        if self.take("**") or self.take("^"):
            token = self.peek()
            if token is None or token.kind != "number":
                raise self.fail("a whole number after '**'")
            self.i += 1

    def factor(self) -> None:
        token = self.peek()
        if token is None:
            raise self.fail("a column name, a number or '('")
        if self.take("("):
            self.expr()
            if not self.take(")"):
                raise self.fail("')'")
            return
        self.i += 1
        if token.kind == "number":
            return
        if token.kind != "name":
            self.i -= 1
            raise self.fail("a column name, a number or '('")
        if self.take("("):
            self.call(token)
            return
        if "." in token.text:
            raise PlanError(
                f"{self.where}: formula {self.formula!r}: {token.text!r} is not a column name "
                "(column names in a plan's formula are letters, digits and underscores)."
            )
        self.columns.append(token.text)

    def call(self, function: _Token) -> None:
        if function.text not in ALLOWED_TRANSFORMS:
            raise PlanError(
                f"{self.where}: formula {self.formula!r} calls {function.text!r}, which is not "
                f"an allowed transform; use one of {', '.join(ALLOWED_TRANSFORMS)}, or add "
                "the transformed column to the data."
            )
        token = self.peek()
        if token is None or token.kind != "name" or "." in token.text:
            raise self.fail(f"a column name inside {function.text}()")
        self.columns.append(token.text)
        self.i += 1
        if not self.take(")"):
            raise self.fail(f"')' closing {function.text}() (transforms take one column)")


def _parse(formula: object, where: str) -> _Parser:
    if not isinstance(formula, str):
        raise PlanError(f"{where}: formula must be a string; got {formula!r}.")
    if len(formula) > _MAX_LENGTH:
        raise PlanError(
            f"{where}: formula is {len(formula)} characters long; the limit is {_MAX_LENGTH}."
        )
    parser = _Parser(_tokenize(formula, where), formula, where)
    parser.formula_()
    return parser


def check_formula(formula: object, *, where: str = "formula") -> str:
    """Check that ``formula`` follows the plan grammar and return it unchanged.

    Parameters
    ----------
    formula
        The formula as written in the plan, e.g. ``"total ~ arm * review + stratum"``.
    where
        Where the formula came from, for the error message (e.g. ``"[[analysis]] 2"``).

    Returns
    -------
    str
        The formula, unchanged.

    Raises
    ------
    PlanError
        If the formula is not a string, is too long, or uses anything outside the
        grammar: quotes, brackets, braces, attribute access, keyword arguments, or a
        function that is not in :data:`ALLOWED_TRANSFORMS`.

    Notes
    -----
    The grammar (in EBNF)::

        formula   = factor "~" expr
        expr      = term { ("+" | "-") term }
        term      = power { ("*" | ":" | "/") power }
        power     = factor [ ("**" | "^") number ]
        factor    = number | column | transform "(" column ")" | "(" expr ")"
        column    = letter { letter | digit | "_" }

    A transform is one of ``C, center, scale, log, exp, np.log, np.log1p, np.exp,
    np.sqrt``. The grammar guarantees that a formula names only columns and these
    transforms; formulaic may still refuse a grammatical formula (``y ~ a * 1``), and
    the fitter then raises :class:`~crtstats.exceptions.ModelSpecificationError`.

    References
    ----------
    Wilkinson, G. N. and Rogers, C. E. (1973). Symbolic description of factorial models
    for analysis of variance. *Applied Statistics* 22, 392-399.

    Examples
    --------
    The same formula R's ``lme4::lmer(total ~ arm * review + stratum + (1 | team_id))``
    takes for its fixed part:

    >>> check_formula("total ~ arm * review + stratum")
    'total ~ arm * review + stratum'
    >>> check_formula("total ~ __import__('os')")
    Traceback (most recent call last):
    ...
    crtstats.exceptions.PlanError: formula: formula "total ~ __import__('os')" has '_' ...
    """
    _parse(formula, where)
    return str(formula)


def formula_columns(formula: str, *, where: str = "formula") -> tuple[str, ...]:
    """The column names a plan formula uses, in order of first appearance.

    Raises
    ------
    PlanError
        If the formula does not follow the plan grammar (see :func:`check_formula`).

    Examples
    --------
    >>> formula_columns("admitted ~ arm + C(stratum) + np.log(age)")
    ('admitted', 'arm', 'stratum', 'age')
    """
    return tuple(dict.fromkeys(_parse(formula, where).columns))
