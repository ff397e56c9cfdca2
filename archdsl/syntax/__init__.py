"""Text to AST: the Lark grammar in grammar/archdsl.lark and its transformer."""

from archdsl.syntax.parser import parse

__all__ = ["parse"]
