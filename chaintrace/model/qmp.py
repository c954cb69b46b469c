"""A small QMP client on the standard library: a unix socket, JSON lines, one command at a time.

QMP (QEMU's machine protocol) greets with `{"QMP": {...}}`, wants
`qmp_capabilities` first, then answers each `{"execute": ...}` with
`{"return": ...}` or `{"error": {"class": ..., "desc": ...}}`; events
(`{"event": ...}`) may come in between and are skipped. Every failure is a
`QmpError` whose message is one line saying what failed and where.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

# Generous for a command on a busy 2-core machine, short enough that a wrong socket fails fast.
DEFAULT_TIMEOUT = 10.0
MAX_LINE = 16 * 2**20  # a QMP answer is small; a stream without newlines is not QMP


class QmpError(RuntimeError):
    """A QMP session failed: no socket, not a QMP monitor, a timeout, or QEMU refused a command."""


class QmpCommandError(QmpError):
    """QEMU answered a command with an error (`error_class` is QMP's class, e.g. GenericError)."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        self.command = command
        self.error_class = error_class
        super().__init__(f"QEMU refused {command}: {desc}")


class QmpClient:
    """One QMP session over a unix socket; `execute` returns a command's `return` value.

    Use as a context manager, or call `close()`.
    """

    def __init__(self, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._socket = self._connect()
        self._buffer = b""
        try:
            greeting = self._read("the greeting")
            if not isinstance(greeting, dict) or "QMP" not in greeting:
                raise QmpError(f"{self.path} is not a QMP monitor: it greeted with {_short(greeting)}")
            self.greeting: dict[str, Any] = greeting
            self.version = greeting["QMP"].get("version", {}).get("qemu", {}) if isinstance(
                greeting["QMP"], dict) else {}
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    def _connect(self) -> socket.socket:
        if not self.path.exists():
            raise QmpError(f"no QMP socket at {self.path} (start QEMU with -qmp unix:{self.path},server=on,wait=off)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            raise QmpError(f"nothing listens on {self.path} (is QEMU still running?)") from None
        except OSError as error:
            sock.close()
            raise QmpError(f"cannot connect to {self.path}: {error.strerror or error}") from None
        return sock

    def _read(self, waiting_for: str) -> Any:
        """Return the next JSON message; raise QmpError on a timeout, a closed socket or a line that is not JSON."""
        while b"\n" not in self._buffer:
            try:
                chunk = self._socket.recv(65536)
            except socket.timeout:
                raise QmpError(f"{self.path}: no answer to {waiting_for} within {self.timeout:g} s") from None
            except OSError as error:
                raise QmpError(f"{self.path}: {error.strerror or error} while waiting for {waiting_for}") from None
            if not chunk:
                raise QmpError(f"{self.path}: QEMU closed the connection while we waited for {waiting_for}")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise QmpError(f"{self.path} is not a QMP monitor: {MAX_LINE} bytes without a line end")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise QmpError(f"{self.path} is not a QMP monitor: it sent {_short(line)}") from None

    def execute(self, command: str, **arguments: Any) -> Any:
        """Return the `return` value of `command`; raise QmpCommandError with QEMU's reason when it refuses."""
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self._socket.sendall(json.dumps(message).encode() + b"\n")
        except OSError as error:
            raise QmpError(f"{self.path}: cannot send {command}: {error.strerror or error}") from None
        while True:
            reply = self._read(command)
            if not isinstance(reply, dict):
                raise QmpError(f"{self.path} is not a QMP monitor: it answered {_short(reply)}")
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                error = reply["error"] if isinstance(reply["error"], dict) else {}
                raise QmpCommandError(command, str(error.get("class", "")), str(error.get("desc", reply["error"])))
            # Anything else is an asynchronous event: not the answer we wait for.

    def close(self) -> None:
        """Close the session (QEMU keeps running)."""
        self._socket.close()

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(value: object, limit: int = 80) -> str:
    """Return `value` as one line of at most `limit` characters, for an error message."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
