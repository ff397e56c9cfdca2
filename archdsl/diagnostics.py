"""Source spans and compiler diagnostics.

Every error a user can cause is an :class:`ArchError` carrying one or more
:class:`Diagnostic` records. Each diagnostic points at a :class:`Span` of a spec
file and renders Rust-style: ``file:line:col: error: what``, the source line, a
caret under the span, then ``= help:`` with the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path


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
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        text = _source_line(self.span, sources) if self.span else None
        if text is not None:
            span = self.span
            number = str(span.line)
            pad = " " * len(number)
            width = (span.end_col - span.col) if span.end_line == span.line else len(text) - span.col + 1
            width = max(1, min(width, len(text) - span.col + 1))
            lines += [
                f"{pad} |",
                f"{number} | {text}",
                f"{pad} | {' ' * (span.col - 1)}{'^' * width}",
            ]
        if self.help:
            pad = " " * (len(str(self.span.line)) if text is not None else 0)
            lines.append(f"{pad} = help: {self.help}")
        return "\n".join(lines)


def _source_line(span: Span, sources: dict[str, str] | None) -> str | None:
    text = (sources or {}).get(span.file)
    if text is None:
        try:
            text = Path(span.file).read_text(encoding="utf-8")
        except OSError:
            return None
    all_lines = text.splitlines()
    if 1 <= span.line <= len(all_lines):
        return all_lines[span.line - 1].expandtabs(1)
    return None


class ArchError(Exception):
    """A spec error: one or more diagnostics, all reported in one run."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic, sources: dict[str, str] | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources) for d in self.diagnostics)

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class UsageError(ArchError):
    """A mistake in how archdsl was called (unknown network, bad -D), not in a spec: exit status 2."""


def error(message: str, span: Span | None = None, help: str | None = None) -> ArchError:
    """Shorthand for a single-diagnostic :class:`ArchError`."""
    return ArchError(Diagnostic(message, span, help))


def closest(word: str, candidates) -> str | None:
    """The candidate a misspelt name most resembles, or None."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    close = closest(word, candidates)
    return f"did you mean '{close}'?" if close else None
