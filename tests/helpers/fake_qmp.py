"""A fake QMP monitor on a unix socket that replays a transcript recorded from a real QEMU.

The transcript (`tests/data/qmp/*.json`, written by
`bench/model_vs_qemu/record_transcript.py`) holds QEMU's greeting and every
command with its answer, in order. The server answers each command with the
next recorded answer to that command (the last one again once they run
out), writes the file a `pmemsave` names (the recorded non-zero bytes at its
start), and sends an event before the first answer, as QEMU may. `mode`
makes it misbehave: "garbage" greets with text that is not JSON, "silent"
never greets, "mute" stops answering after `qmp_capabilities`, "refuse"
answers the command `refuse` with an error.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "qmp"


def load_transcript(name: str = "qemu-7.2-loopback.json") -> dict[str, Any]:
    """Return a recorded transcript from tests/data/qmp/."""
    return json.loads((DATA / name).read_text())


class FakeQmp:
    """Serve `transcript` on `path` in a thread until `close()`; one client at a time, as QEMU's monitor."""

    def __init__(self, path: Path, transcript: dict[str, Any], mode: str = "qmp", refuse: str = "") -> None:
        self.path = path
        self.mode = mode
        self.refuse = refuse
        self.transcript = transcript
        self.received: list[str] = []
        self._answers: dict[str, list[Any]] = defaultdict(list)
        for exchange in transcript["exchanges"]:
            self._answers[exchange["execute"]].append(exchange["return"])
        self._used: dict[str, int] = defaultdict(int)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _answer(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if command == self.refuse:
            return {"error": {"class": "GenericError", "desc": f"{command} is not allowed now"}}
        recorded = self._answers.get(command)
        if not recorded:
            return {"error": {"class": "CommandNotFound", "desc": f"The command {command} has not been found"}}
        index = min(self._used[command], len(recorded) - 1)
        self._used[command] += 1
        if command == "pmemsave":
            nonzero = self.transcript.get("nonzero", 0)
            with open(arguments["filename"], "wb") as dump:
                dump.write(b"\x5a" * nonzero + bytes(arguments["size"] - nonzero))
        return {"return": recorded[index]}

    def _session(self, connection: socket.socket) -> None:
        if self.mode == "silent":
            self._stop.wait()
            return
        if self.mode == "garbage":
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            return
        connection.sendall(json.dumps(self.transcript["greeting"]).encode() + b"\n")
        reader = connection.makefile("rb")
        evented = False
        for line in reader:
            message = json.loads(line)
            command = message.get("execute", "")
            self.received.append(command)
            if self.mode == "mute" and command != "qmp_capabilities":
                self._stop.wait()
                return
            if not evented:
                connection.sendall(b'{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}\n')
                evented = True
            connection.sendall(json.dumps(self._answer(command, message.get("arguments", {}))).encode() + b"\n")

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except (socket.timeout, OSError):
                continue
            with connection:
                try:
                    self._session(connection)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FakeQmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
