"""Newline handling for the .arch lexer.

A newline ends a statement, except where the line obviously goes on: inside
brackets, after a token that needs something after it (`->`, `,`, `=`, an
operator, `{`) and before a line that starts with `->`, `}`, `else` or `elif`.
`;` separates statements on one line, and so does a closing `}` that is not
followed by `->`, `else` or `elif` (`sum { branch { } branch { relu } }`).
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token

from archdsl import limits


class TooManyTokens(Exception):
    """The token stream went over the `tokens` limit at `token`."""

    def __init__(self, token: Token):
        super().__init__(token)
        self.token = token

_CONTINUES_AFTER = {
    "->", ",", "=", "{", ":", "?", "+", "-", "*", "/", "//", "%", "**",
    "==", "!=", "<", ">", "<=", ">=", "and", "or", "not", "as", "in",
}
_CONTINUES_BEFORE = {"->", "}", "else", "elif", "within"}
_OPEN = {"(": ")", "[": "]"}
_CLOSE = {")", "]"}


class NewlinePostLex:
    """A Lark post-lexer that drops the `_NL` tokens that do not end a statement."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        previous: Token | None = None
        pending: Token | None = None
        budget = limits.value("tokens")
        for count, token in enumerate(stream):
            if count > budget:
                raise TooManyTokens(token)
            if token.type == "_NL":
                if depth == 0 and previous is not None and previous.value not in _CONTINUES_AFTER:
                    pending = pending or token
                continue
            if pending is None and previous is not None and previous.value == "}" and depth == 0:
                pending = Token.new_borrow_pos("_NL", ";", token)
            if pending is not None:
                if token.value not in _CONTINUES_BEFORE:
                    yield pending
                pending = None
            if token.value in _OPEN:
                depth += 1
            elif token.value in _CLOSE:
                depth = max(0, depth - 1)
            previous = token
            yield token
