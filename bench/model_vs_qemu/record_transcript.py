"""Record the QMP transcript the fast suite replays (tests/data/qmp/): a real --from-qmp --watch session.

`.venv/bin/python bench/model_vs_qemu/record_transcript.py tests/data/qmp/qemu-7.2-loopback.json`

Starts the bench guest (64 MiB, a 4 MiB working set swept at 2 MB/s) and a
destination, sets max-bandwidth 8 MiB/s, runs what `--from-qmp
--count-nonzero` runs, migrates, and polls query-migrate every 100 ms; every
command and QEMU's answer are written down in order, with the greeting.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rig  # noqa: E402

from chaintrace.model import live  # noqa: E402
from chaintrace.model.qmp import QmpClient  # noqa: E402

MiB = 2**20


class Recorder(QmpClient):
    """A QmpClient that keeps every command, its arguments and QEMU's answer."""

    exchanges: list[dict[str, Any]] = []

    def execute(self, command: str, **arguments: Any) -> Any:
        answer = super().execute(command, **arguments)
        if command != "pmemsave":  # its file is QEMU's to write: the fake server writes one itself
            self.exchanges.append({"execute": command, "arguments": arguments, "return": answer})
        else:
            self.exchanges.append({"execute": command, "arguments": {k: v for k, v in arguments.items()
                                                                      if k != "filename"}, "return": answer})
        return answer


def main(target: Path) -> int:
    """Record the session into `target`; return 0."""
    guest = rig.Guest(64, 4 * MiB, 2e6, nonzero=2 * MiB)
    with tempfile.TemporaryDirectory(prefix="qmp-transcript-") as scratch:
        work = Path(scratch)
        pair = rig.start_pair(rig.qemu_binary(), rig.build_guest(work), guest, work / "run")
        try:
            with Recorder(pair.source_qmp) as client:
                greeting = client.greeting
                client.execute("migrate-set-parameters", **{"max-bandwidth": 8 * MiB, "downtime-limit": 300})
                inputs = live.read_inputs(client, calc_time=1, with_nonzero=True)
                client.execute("migrate", uri=f"tcp:127.0.0.1:{pair.port}")
                while live.poll(client).status not in ("completed", "failed", "cancelled"):
                    rig.time.sleep(0.1)
        finally:
            pair.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"recorded": "Debian qemu-system-x86_64 7.2, bench guest 64 MiB, 4 MiB swept at 2 MB/s",
                                  "nonzero": inputs.nonzero, "greeting": greeting,
                                  "exchanges": Recorder.exchanges}, indent=1) + "\n")
    print(f"{target}: {len(Recorder.exchanges)} exchanges; nonzero {inputs.nonzero}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
