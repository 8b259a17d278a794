"""A small synchronous LSP client: `netdef lsp` as a subprocess, JSON-RPC over its stdio.

Used by the tests (tests/test_lsp*.py) and by benchmarks/lsp.py, so both talk to the server
exactly as an editor does: Content-Length framed messages on a pipe.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    pass


class Client:
    def __init__(self, init_options: dict | None = None, capabilities: dict | None = None):
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "netdef", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=str(REPO))
        self._id = 0
        self._responses: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.notifications: queue.Queue = queue.Queue()
        self.log: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.initialize_result = self.request("initialize", {
            "processId": os.getpid(), "rootUri": None,
            "capabilities": capabilities or {"textDocument": {"hover": {"contentFormat": ["markdown"]}}},
            "initializationOptions": init_options or {}})
        self.notify("initialized", {})

    # --- wire -------------------------------------------------------------------------------

    def _send(self, msg: dict) -> None:
        body = json.dumps(msg).encode("utf-8")
        with self._lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.notifications.put(None)
                    for q in list(self._responses.values()):
                        q.put({"error": {"message": "server exited"}})
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:  # a request from the server: answer it
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                q = self._responses.get(msg["id"])
                if q is not None:
                    q.put(msg)
            else:
                if msg.get("method") == "window/logMessage":
                    self.log.append(msg["params"])
                self.notifications.put(msg)

    def request(self, method: str, params, timeout: float = 60.0):
        self._id += 1
        rid = self._id
        q: queue.Queue = queue.Queue()
        self._responses[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to {method} in {timeout} s") from None
        finally:
            self._responses.pop(rid, None)
        if "error" in msg:
            raise ServerError(f"{method}: {msg['error']}")
        return msg.get("result")

    def notify(self, method: str, params) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, method: str, predicate=lambda p: True, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} in {timeout} s")
            try:
                msg = self.notifications.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise ServerError("the server exited: " + self.stderr_text()[-2000:])
            if msg.get("method") == method and predicate(msg["params"]):
                return msg["params"]

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    # --- documents ----------------------------------------------------------------------------

    def open(self, uri: str, text: str, version: int = 1, language: str = "prototxt") -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language,
                                                              "version": version, "text": text}})

    def change(self, uri: str, version: int, text: str | None = None, edits=None) -> None:
        changes = [{"text": text}] if text is not None else edits
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": changes})

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 60.0) -> list[dict]:
        return self.wait_for("textDocument/publishDiagnostics",
                             lambda p: p["uri"] == uri and (version is None or p.get("version") == version),
                             timeout)["diagnostics"]

    def at(self, method: str, uri: str, line: int, character: int, **extra):
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        params.update(extra)
        return self.request(method, params)

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            return self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            return self.proc.wait()


def position_of(text: str, needle: str, nth: int = 0, delta: int = 0) -> tuple[int, int]:
    """(line, character) of the nth occurrence of needle (plus delta characters), for ASCII text."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += delta
    line = text.count("\n", 0, at)
    return line, at - (text.rfind("\n", 0, at) + 1)
