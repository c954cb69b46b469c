"""A QMP client over a unix socket, standard library only: connect, negotiate, run commands."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any


class QmpError(RuntimeError):
    """QEMU answered a command with an error, or the monitor went away."""


class Qmp:
    """One QMP session; `command` returns the `return` value of a command and skips events."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self._socket.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise QmpError(f"no QMP monitor at {path} after {timeout:.0f} s") from None
                time.sleep(0.1)
        self._socket.settimeout(timeout)
        self._reader = self._socket.makefile("rb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self._reader.readline()
        if not line:
            raise QmpError("QMP monitor closed the connection")
        return json.loads(line)

    def command(self, name: str, **arguments: Any) -> Any:
        """Return the result of QMP command `name`; raise QmpError with QEMU's message on an error."""
        message: dict[str, Any] = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self._socket.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QmpError(f"{name}: {reply['error'].get('desc', reply['error'])}")
            # Anything else is an asynchronous event: not what we wait for.

    def close(self) -> None:
        """Close the session (QEMU keeps running)."""
        self._reader.close()
        self._socket.close()
