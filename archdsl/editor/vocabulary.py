"""The words of the .arch language, read from their single sources: the reserved words from
the grammar (the NAME terminal excludes them), op and construct names and signatures from
their registries, built-in functions from the evaluator. The Pygments lexer, the TextMate
grammar and the language server's completions are all made from these lists.
"""

from __future__ import annotations

import functools
import re

from archdsl.constructs import CONSTRUCTS
from archdsl.elaborate import _signature
from archdsl.evaluate import BUILTIN_NAMES
from archdsl.ops import OPS
from archdsl.syntax.parser import GRAMMAR

# How the reserved words read; a reserved word added to the grammar and missing here is a keyword.
CONSTANTS = frozenset({"true", "false", "none"})
WORD_OPERATORS = frozenset({"and", "or", "not", "in", "percent"})
DECLARATIONS = frozenset({"import", "block", "network", "def"})


@functools.cache
def reserved_words() -> tuple[str, ...]:
    """Every reserved word of the grammar, sorted (the words the NAME terminal may not be)."""
    text = GRAMMAR.read_text(encoding="utf-8")
    match = re.search(r"^NAME\s*:\s*/\(\?!\(([^)]*)\)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{GRAMMAR}: the NAME terminal no longer lists the reserved words as (?!(a|b|..))")
    return tuple(sorted(match.group(1).split("|")))


def keywords() -> tuple[str, ...]:
    """Reserved words that are statements or declarations (not constants or word operators)."""
    return tuple(w for w in reserved_words() if w not in CONSTANTS and w not in WORD_OPERATORS)


def declarations() -> tuple[str, ...]:
    """Reserved words that introduce a named definition (`block NAME`, `network NAME`)."""
    return tuple(w for w in reserved_words() if w in DECLARATIONS and w != "import")


def constants() -> tuple[str, ...]:
    return tuple(w for w in reserved_words() if w in CONSTANTS)


def word_operators() -> tuple[str, ...]:
    return tuple(w for w in reserved_words() if w in WORD_OPERATORS)


def op_names() -> tuple[str, ...]:
    """Layer ops (the op registry) and constructs (residual, concat, clique, ..), sorted."""
    return tuple(sorted({*OPS, *CONSTRUCTS}))


def builtin_functions() -> tuple[str, ...]:
    return tuple(sorted(BUILTIN_NAMES))


def signature(name: str) -> str:
    """`conv(out, kernel, stride=1, ...)`: an op's or construct's arguments, as error help shows them."""
    definition = OPS.get(name) or CONSTRUCTS[name]
    return _signature(definition)


def documentation(name: str) -> str:
    """An op's or construct's one-paragraph description ('' when it has none)."""
    definition = OPS.get(name) or CONSTRUCTS[name]
    return (getattr(definition, "doc", "") or "").strip()
