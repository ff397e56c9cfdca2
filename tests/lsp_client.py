"""A small LSP client for tests: starts `archdsl lsp` as an editor does and speaks JSON-RPC
over its stdin and stdout (Content-Length framed messages)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path


class LspClient:
    def __init__(self, root: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "archdsl.cli", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.pending: list[dict] = []  # notifications read while waiting for something else
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: dict, timeout: float = 60) -> object:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        message = self._wait(lambda m: m.get("id") == self.next_id and "method" not in m, timeout)
        assert "error" not in message, message
        return message["result"]

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 60) -> list[dict]:
        """The next diagnostics published for `uri` (for `version`, when given)."""
        message = self._wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                             and m["params"]["uri"] == uri
                             and (version is None or m["params"].get("version") == version), timeout)
        return message["params"]["diagnostics"]

    def _wait(self, wanted, timeout: float) -> dict:
        for i, message in enumerate(self.pending):
            if wanted(message):
                return self.pending.pop(i)
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no answer from the server in {timeout} s; stderr: "
                                     f"{self._stderr()}") from None
            if wanted(message):
                return message
            self.pending.append(message)

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def initialize(self, root: Path) -> dict:
        result = self.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {
            "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]},
                             "publishDiagnostics": {"versionSupport": True}}}})
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str, version: int = 1) -> str:
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "arch", "version": version,
                                                              "text": text}})
        return uri

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})

    def hover(self, uri: str, line: int, character: int) -> dict | None:
        return self.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": line, "character": character}})

    def definition(self, uri: str, line: int, character: int):
        return self.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                        "position": {"line": line, "character": character}})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=20)
            self.notify("exit", None)
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                stream.close()
