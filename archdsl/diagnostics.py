"""Source spans and compiler diagnostics.

Every error a user can cause is an :class:`ArchError` carrying one or more
:class:`Diagnostic` records. Each diagnostic points at a :class:`Span` of a spec
file and renders Rust-style: ``file:line:col: error: what``, the source line, a
caret under the span, then ``= help:`` with the fix.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a spec file; lines and columns are 1-based, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One independent mistake in a spec."""

    message: str
    span: Span | None = None
    help: str | None = None
    severity: str = "error"

    def render(self, sources: dict[str, str] | None = None) -> str:
        """Format the diagnostic with the offending source line and a caret."""
        where = f"{printable(str(self.span))}: " if self.span else ""
        lines = [f"{where}{self.severity}: {printable(self.message)}"]
        text = _source_line(self.span, sources) if self.span else None
        if text is not None:
            span = self.span
            number = str(span.line)
            pad = " " * len(number)
            width = (span.end_col - span.col) if span.end_line == span.line else len(text) - span.col + 1
            width = max(1, min(width, len(text) - span.col + 1))
            before = printable(text[:span.col - 1])  # escapes widen the line: the caret follows them
            marked = printable(text[span.col - 1:span.col - 1 + width])
            lines += [
                f"{pad} |",
                f"{number} | {printable(text)}",
                f"{pad} | {' ' * len(before)}{'^' * max(1, len(marked))}",
            ]
        if self.help:
            pad = " " * (len(str(self.span.line)) if text is not None else 0)
            lines.append(f"{pad} = help: {printable(self.help)}")
        return "\n".join(lines)


def _source_line(span: Span, sources: dict[str, str] | None) -> str | None:
    text = (sources or {}).get(span.file)
    if text is None:
        text = _read_source(span.file)
        if text is None:
            return None
    all_lines = source_lines(text)
    if 1 <= span.line <= len(all_lines):
        return all_lines[span.line - 1].expandtabs(1)
    return None


def _read_source(file: str) -> str | None:
    """A spec file's text for showing a line of it: regular .arch files only, never blocking."""
    from archdsl.files import ReadError, read_bytes

    if not file.endswith(".arch"):
        return None
    try:
        return read_bytes(file).decode("utf-8", errors="backslashreplace")
    except ReadError:
        return None


@functools.lru_cache(maxsize=16)
def source_lines(text: str) -> tuple[str, ...]:
    """The lines of a spec as the lexer counts them: only '\\n' ends a line (not U+2028, a vertical
    tab or a form feed, which `str.splitlines` would also split at)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return tuple(line.removesuffix("\r") for line in lines)


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters, line and paragraph separators and
    bidirectional overrides become escapes (`\\x1b`, `\\u2028`); tabs stay."""
    if text.isprintable():
        return text
    return "".join(ch if ch == "\t" or ch.isprintable() and unicodedata.category(ch) != "Cf"
                   else ascii(ch)[1:-1] for ch in text)


class ArchError(Exception):
    """A spec error: one or more diagnostics, all reported in one run."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic, sources: dict[str, str] | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__()

    def __str__(self) -> str:
        return self.render()

    def render(self, most: int | None = None) -> str:
        """All diagnostics, or the first `most` and a count of the rest."""
        shown = self.diagnostics if most is None else self.diagnostics[:most]
        text = "\n\n".join(d.render(self.sources) for d in shown)
        rest = len(self.diagnostics) - len(shown)
        if rest:
            text += f"\n\n... and {rest:,} more error{'s' if rest > 1 else ''} (the first {most} are shown; " \
                    "raise the limit with --limit errors=N or ARCHDSL_LIMIT_ERRORS=N)"
        return text

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class UsageError(ArchError):
    """A mistake in how archdsl was called (unknown network, bad -D), not in a spec: exit status 2."""


def error(message: str, span: Span | None = None, help: str | None = None) -> ArchError:
    """Shorthand for a single-diagnostic :class:`ArchError`."""
    return ArchError(Diagnostic(message, span, help))


# How many more 'did you mean' hints one build may compute (None: any number). A file with
# thousands of misspellings gets hints for the first ones, which are the ones printed.
hints_left: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("archdsl_hints", default=None)


def closest(word: str, candidates) -> str | None:
    """The candidate a misspelt name most resembles, or None."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    left = hints_left.get()
    if left is not None:
        if left[0] <= 0:
            return None
        left[0] -= 1
    close = closest(word, candidates)
    return f"did you mean '{close}'?" if close else None
