"""`archdsl lsp`: a language server for .arch files over stdio, built on pygls.

- diagnostics as you type: the messages and ranges of `archdsl check` (archdsl.checking),
  published on open, change and save; errors in imported files go to those files;
- hover: output shape, parameters and MACs of a layer, block instance or named tensor;
- go to definition: blocks, networks, variants, constants, named tensors, parameters, imports;
- completion: op and construct names with their argument signatures, the file's blocks.

Positions: LSP counts characters in UTF-16 code units from 0; spans count characters from 1.
"""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from archdsl import __version__
from archdsl.diagnostics import Diagnostic
from archdsl.editor.analysis import Analysis, Location, analyse, completions, definition, hover

KINDS = {"op": lsp.CompletionItemKind.Function, "construct": lsp.CompletionItemKind.Struct,
         "block": lsp.CompletionItemKind.Class, "function": lsp.CompletionItemKind.Function,
         "keyword": lsp.CompletionItemKind.Keyword}


class ArchServer(LanguageServer):
    """The server with its last analysis of each open document (and the last one that parsed)."""

    def __init__(self):
        super().__init__("archdsl", __version__)
        self.analyses: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}
        self.published: dict[str, set[str]] = {}  # document uri -> uris it published diagnostics to


server = ArchServer()


# ---------------------------------------------------------------- positions


def _utf16(text: str, col: int) -> int:
    """A 1-based character column of `text` as a 0-based UTF-16 offset."""
    prefix = text[:max(col - 1, 0)]
    return len(prefix.encode("utf-16-le")) // 2 + max(col - 1 - len(prefix), 0)


def _column(text: str, character: int) -> int:
    """A 0-based UTF-16 offset into `text` as a 1-based character column."""
    units = 0
    for index, char in enumerate(text):
        if units >= character:
            return index + 1
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text) + 1 + max(character - units, 0)


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _range(text: str, line: int, col: int, end_line: int, end_col: int) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=line - 1, character=_utf16(_line(text, line), col)),
                     end=lsp.Position(line=end_line - 1, character=_utf16(_line(text, end_line), end_col)))


def _cursor(text: str, position: lsp.Position) -> tuple[int, int]:
    line = position.line + 1
    return line, _column(_line(text, line), position.character)


# ---------------------------------------------------------------- diagnostics


def _diagnostic(d: Diagnostic, text: str) -> lsp.Diagnostic:
    span = d.span
    where = _range(text, span.line, span.col, span.end_line, span.end_col) if span else _range(text, 1, 1, 1, 1)
    severity = lsp.DiagnosticSeverity.Warning if d.severity == "warning" else lsp.DiagnosticSeverity.Error
    message = d.message + (f"\nhelp: {d.help}" if d.help else "")
    return lsp.Diagnostic(range=where, message=message, severity=severity, source="archdsl")


def _refresh(ls: ArchServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    path = document.path if document.path else to_fs_path(uri) or uri
    try:
        analysis = analyse(document.source, path)
    except Exception as exc:  # noqa: BLE001  (a bug of archdsl's must not take the editor's server down)
        analysis = Analysis(path, document.source, diagnostics=[
            Diagnostic(f"archdsl could not check this file ({type(exc).__name__}: {exc}); please report it")])
    ls.analyses[uri] = analysis
    if analysis.program is not None:
        ls.parsed[uri] = analysis
    by_uri: dict[str, list[lsp.Diagnostic]] = {uri: []}
    sources = analysis.program.sources if analysis.program else {}
    for d in analysis.diagnostics:
        if d.span is not None and d.span.file != path:
            other = from_fs_path(d.span.file) or d.span.file
            by_uri.setdefault(other, []).append(_diagnostic(d, sources.get(d.span.file, "")))
        else:
            by_uri[uri].append(_diagnostic(d, document.source))
    for stale in ls.published.get(uri, set()) - set(by_uri):
        by_uri[stale] = []
    ls.published[uri] = {u for u, items in by_uri.items() if items and u != uri}
    for target, items in by_uri.items():
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=target, diagnostics=items, version=document.version if target == uri else None))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchServer, params: lsp.DidOpenTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchServer, params: lsp.DidChangeTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: ArchServer, params: lsp.DidSaveTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ArchServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    for target in {uri, *ls.published.pop(uri, set())}:
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=target, diagnostics=[]))
    ls.analyses.pop(uri, None)
    ls.parsed.pop(uri, None)


# ---------------------------------------------------------------- queries


def _current(ls: ArchServer, uri: str) -> Analysis | None:
    """The newest analysis that parsed (positions may have moved a little while the text does not parse)."""
    return ls.parsed.get(uri) or ls.analyses.get(uri)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def on_hover(ls: ArchServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis = _current(ls, params.text_document.uri)
    if analysis is None:
        return None
    line, col = _cursor(analysis.text, params.position)
    found = hover(analysis, line, col, tuple(a for u, a in ls.parsed.items() if u != params.text_document.uri))
    if found is None:
        return None
    text, where = found
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                     range=_range(analysis.text, where.line, where.col, where.end_line, where.end_col))


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: ArchServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    analysis = _current(ls, params.text_document.uri)
    if analysis is None:
        return None
    line, col = _cursor(analysis.text, params.position)
    found = definition(analysis, line, col)
    return _location(analysis, found) if found else None


def _location(analysis: Analysis, where: Location) -> lsp.Location:
    text = analysis.program.sources.get(where.path, "") if analysis.program else ""
    if not text:
        try:
            with open(where.path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            text = ""
    return lsp.Location(uri=from_fs_path(where.path) or where.path,
                        range=_range(text, where.line, where.col, where.end_line, where.end_col))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[">"]))
def on_completion(ls: ArchServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    items = [lsp.CompletionItem(label=c.label, kind=KINDS[c.kind], detail=c.detail or None,
                                documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=c.documentation)
                                if c.documentation else None)
             for c in completions(_current(ls, params.text_document.uri))]
    return lsp.CompletionList(is_incomplete=False, items=items)


def main() -> int:
    """Serve over stdin and stdout until the client says exit."""
    server.start_io()
    return 0
