"""A Pygments lexer for .arch specs, registered as the plugin `arch` (entry point group
`pygments.lexers`): `pygmentize -l arch net.arch`, `\\begin{minted}{arch}` in LaTeX, and
```arch fences wherever Markdown is rendered by Pygments (MkDocs, Sphinx).

Keywords, constants and word operators come from the grammar's reserved words; op and
construct names from their registries; built-in functions from the evaluator
(archdsl.editor.vocabulary), so nothing is listed twice.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from archdsl.editor import vocabulary

NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def _expression_rules() -> list:
    """Rules shared by code and by `{expr}` inside strings."""
    return [
        (r"#[^\n]*", Comment.Single),
        (r"[ \t\f]+", Whitespace),
        (r'"', String.Double, "string"),
        (r"([0-9][0-9_]*\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+", Number.Float),
        (r"[0-9][0-9_]*", Number.Integer),
        (r"->", Operator),
        (r"\*\*|//|==|!=|<=|>=|[-+*/%<>=?:]", Operator),
        (words(vocabulary.constants(), suffix=r"\b"), Keyword.Constant),
        (words(vocabulary.word_operators(), suffix=r"\b"), Operator.Word),
        (words(vocabulary.keywords(), suffix=r"\b"), Keyword),
        (words(vocabulary.op_names(), suffix=r"\b"), Name.Builtin),
        (words(vocabulary.builtin_functions(), suffix=r"\b"), Name.Builtin.Pseudo),
        (NAME, Name),
        (r"[()\[\],.;]", Punctuation),
    ]


class ArchLexer(RegexLexer):
    """The .arch network specification language (archdsl)."""

    name = "archdsl"
    aliases = ("arch", "archdsl")
    filenames = ("*.arch",)
    mimetypes = ("text/x-archdsl",)

    tokens: ClassVar[dict[str, list]] = {
        "root": [
            (r"\n", Whitespace),
            (r"\{|\}", Punctuation),
            (rf"({'|'.join(vocabulary.declarations())})(\s+)({NAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (r"import\b", Keyword.Namespace),
            include("expression"),
        ],
        "expression": _expression_rules(),
        "string": [
            (r'"', String.Double, "#pop"),
            (r"\\.", String.Escape),
            (r"\{", String.Interpol, "interpolation"),
            (r'[^"\\{\n]+', String.Double),
        ],
        "interpolation": [
            (r"\}", String.Interpol, "#pop"),
            include("expression"),
        ],
    }
