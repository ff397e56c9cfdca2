"""Editor and listing support for .arch files: the language's vocabulary (keywords from the
grammar, ops and constructs from their registries), a Pygments lexer (`pygmentize -l arch`,
minted), a TextMate grammar generator (editors/) and a language server (`archdsl lsp`).
"""
