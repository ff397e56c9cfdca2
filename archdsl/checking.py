"""`archdsl check` on one loaded program: every network and variant of the main file is
elaborated and its expectations tested. Shared by the command line and the language
server (archdsl.editor.server), so both report the same diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archdsl.diagnostics import ArchError, Diagnostic, UsageError
from archdsl.elaborate import elaborate
from archdsl.ir import Graph
from archdsl.loader import Program


@dataclass
class CheckResult:
    """What checking a program found: the graphs that elaborated (by target), how many
    expectations they met, and every distinct error."""

    targets: list[str]
    graphs: dict[str, Graph] = field(default_factory=dict)
    checks: int = 0
    errors: list[Diagnostic] = field(default_factory=list)


def check_program(program: Program, targets: list[str] | None = None) -> CheckResult:
    """Elaborate `targets` (default: every target of `program`); a network whose parameters
    have no defaults is skipped (it is checked through its variants)."""
    result = CheckResult(targets or program.targets())
    for target in result.targets:
        try:
            g = elaborate(program, target)
        except UsageError:
            continue
        except ArchError as exc:
            result.errors.extend(d for d in exc.diagnostics if d not in result.errors)
            continue
        result.graphs[target] = g
        result.checks += len(g.graph["checks"])
    return result
