"""Run real QEMU scenarios against the instrumented oracle build and record the caller->callee pairs.

Every QEMU runs with TCG (no KVM), `-nodefaults -display none`, SeaBIOS from Debian's `seabios`
package and the e1000 option ROM from `ipxe-qemu` (Debian's QEMU source ships no firmware), so
the CPU really runs (SeaBIOS finds nothing to boot and retries).  Each is driven over QMP on a
unix socket by the small client below (standard library only).  The recorder linked into the
binary (cyg_recorder.c) writes the distinct (call site, function) address pairs of each process
to `$CHAINTRACE_CYG_OUT.<pid>` when it exits; `map_pairs` turns them into (caller, callee)
functions with the binary's symbol table (`nm -S`; each function's file from DWARF
through `addr2line`) and keeps the pairs whose two functions are defined in the tree.

Scenarios (each its own QEMU processes; one that fails is reported with its error, not dropped):
  migrate-tcp, migrate-exec, migrate-file, migrate-multifd, migrate-postcopy,
  migrate-background-snapshot, savevm-loadvm, blockdev-backup, block-stream,
  device-add-del-e1000, qom-set, query-status
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

from extract_static import Paths, write_tsv

FIRMWARE_DIRS = ["/usr/share/seabios", "/usr/lib/ipxe/qemu"]
RAM = "128M"
TIMEOUT = 120.0


class QMPError(Exception):
    pass


class QMP:
    """A minimal QMP client over a unix socket."""

    def __init__(self, path: Path, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"no QMP socket at {path}")
                time.sleep(0.2)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.events: list[dict] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected greeting {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("QMP connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, **arguments):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise QMPError(f"{command}: {reply['error'].get('desc')}")
            elif "return" in reply:
                return reply["return"]

    def hmp(self, command: str) -> str:
        out = self.execute("human-monitor-command", **{"command-line": command})
        return out

    def wait_event(self, name: str, timeout: float = TIMEOUT, match=None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event["event"] == name and (match is None or match(event)):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError(f"no {name} event within {timeout:.0f} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass
            finally:
                self.sock.settimeout(TIMEOUT)

    def close(self):
        self.sock.close()


class Qemu:
    """One instrumented QEMU process with a QMP socket."""

    def __init__(self, scenario: "Scenario", name: str, extra: list[str]):
        self.name = name
        self.sock_path = scenario.dir / f"{name}.qmp"
        self.log = open(scenario.dir / f"{name}.log", "w")
        args = [str(scenario.binary), "-machine", "pc", "-accel", "tcg", "-m", RAM, "-nodefaults",
                "-display", "none", "-serial", "none", "-monitor", "none",
                "-qmp", f"unix:{self.sock_path},server=on,wait=off", *extra]
        for folder in FIRMWARE_DIRS:
            args[1:1] = ["-L", folder]
        env = {**os.environ, "CHAINTRACE_CYG_OUT": str(scenario.dir / "edges")}
        scenario.commands.append(" ".join(args))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     cwd=scenario.dir)
        try:
            self.qmp = QMP(self.sock_path)
        except Exception:
            self.stop()
            raise

    def quit(self, timeout: float = 60.0) -> None:
        try:
            self.qmp.execute("quit")
        except Exception:
            pass
        self.stop(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Wait for the process; SIGTERM (QEMU exits cleanly, the recorder dumps) then SIGKILL."""
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


class Scenario:
    def __init__(self, name: str, root: Path, binary: Path, qemu_img: Path):
        self.name = name
        self.dir = root / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.binary = binary
        self.qemu_img = qemu_img
        self.commands: list[str] = []
        self.notes: list[str] = []
        self.procs: list[Qemu] = []

    def qemu(self, name: str, *extra: str) -> Qemu:
        q = Qemu(self, name, list(extra))
        self.procs.append(q)
        return q

    def img(self, *args: str) -> None:
        subprocess.run([str(self.qemu_img), *args], check=True, cwd=self.dir, capture_output=True)

    def cleanup(self) -> None:
        for q in self.procs:
            if q.proc.poll() is None:
                q.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_migration(q: Qemu, timeout: float = TIMEOUT, statuses=("completed",)) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = q.qmp.execute("query-migrate")
        status = info.get("status")
        if status in statuses:
            return info
        if status in ("failed", "cancelled"):
            raise QMPError(f"migration {status}: {info.get('error-desc', '')}")
        if time.monotonic() > deadline:
            raise QMPError(f"migration still {status} after {timeout:.0f} s")
        time.sleep(0.5)


def wait_incoming(q: Qemu, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = q.qmp.execute("query-status")["status"]
        if status in ("running", "paused") and q.qmp.execute("query-migrate").get("status") in ("completed", None):
            return
        if time.monotonic() > deadline:
            raise QMPError(f"destination still {status} after {timeout:.0f} s")
        time.sleep(0.5)


def migrate_pair(sc: Scenario, caps: list[str], params: dict | None = None, postcopy: bool = False) -> None:
    src = sc.qemu("src")
    dst = sc.qemu("dst", "-incoming", "defer")
    for q in (src, dst):
        if caps:
            q.qmp.execute("migrate-set-capabilities",
                          capabilities=[{"capability": c, "state": True} for c in caps])
        if params:
            q.qmp.execute("migrate-set-parameters", **params)
    port = free_port()
    dst.qmp.execute("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")
    time.sleep(2)  # let the guest run (and dirty memory) a little
    if postcopy:
        # Slow precopy (100 kB/s) so that it cannot converge before the switch to postcopy.
        src.qmp.execute("migrate-set-parameters", **{"max-bandwidth": 100_000})
    src.qmp.execute("migrate", uri=f"tcp:127.0.0.1:{port}")
    if postcopy:
        wait_migration(src, statuses=("active",))
        src.qmp.execute("migrate-start-postcopy")
        seen = wait_migration(src, statuses=("postcopy-active", "completed"))["status"]
        src.qmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        info = wait_migration(src)
        sc.notes.append(f"status polled after migrate-start-postcopy: {seen}; "
                        f"postcopy-requests {info.get('ram', {}).get('postcopy-requests')}")
    else:
        wait_migration(src)
    wait_incoming(dst)
    dst.qmp.execute("query-status")
    src.quit()
    dst.quit()


def scenario_migrate_tcp(sc: Scenario) -> None:
    migrate_pair(sc, [])


def scenario_migrate_multifd(sc: Scenario) -> None:
    migrate_pair(sc, ["multifd"], {"multifd-channels": 2})


def scenario_migrate_postcopy(sc: Scenario) -> None:
    migrate_pair(sc, ["postcopy-ram"], postcopy=True)


def scenario_migrate_exec(sc: Scenario) -> None:
    image = sc.dir / "state.bin"
    src = sc.qemu("src")
    time.sleep(2)
    src.qmp.execute("migrate", uri=f"exec:cat > {image}")
    wait_migration(src)
    src.quit()
    dst = sc.qemu("dst", "-incoming", f"exec:cat {image}")
    wait_incoming(dst)
    dst.quit()


def scenario_migrate_file(sc: Scenario) -> None:
    image = sc.dir / "state.bin"
    src = sc.qemu("src")
    time.sleep(2)
    src.qmp.execute("migrate", uri=f"file:{image}")
    wait_migration(src)
    src.quit()
    dst = sc.qemu("dst", "-incoming", "defer")
    dst.qmp.execute("migrate-incoming", uri=f"file:{image}")
    wait_incoming(dst)
    dst.quit()


def scenario_migrate_background_snapshot(sc: Scenario) -> None:
    image = sc.dir / "snapshot.bin"
    src = sc.qemu("src")
    src.qmp.execute("migrate-set-capabilities",
                    capabilities=[{"capability": "background-snapshot", "state": True}])
    time.sleep(2)
    src.qmp.execute("migrate", uri=f"file:{image}")
    wait_migration(src)
    status = src.qmp.execute("query-status")["status"]
    sc.notes.append(f"source {status} after the snapshot")
    src.quit()
    dst = sc.qemu("dst", "-incoming", "defer")
    dst.qmp.execute("migrate-incoming", uri=f"file:{image}")
    wait_incoming(dst)
    dst.quit()


def scenario_savevm_loadvm(sc: Scenario) -> None:
    sc.img("create", "-f", "qcow2", "disk.qcow2", "64M")
    q = sc.qemu("vm", "-blockdev", "driver=qcow2,node-name=disk0,file.driver=file,file.filename=disk.qcow2",
                "-device", "ide-hd,drive=disk0,bus=ide.0")
    time.sleep(2)
    for command in ("savevm snap1", "info snapshots", "loadvm snap1", "delvm snap1"):
        out = q.qmp.hmp(command)
        if "Error" in out or "error" in out:
            raise QMPError(f"HMP {command}: {out.strip()}")
    q.qmp.execute("query-status")
    q.quit()


def write_pattern_image(sc: Scenario, name: str) -> None:
    raw = sc.dir / (name + ".raw")
    with open(raw, "wb") as f:
        for i in range(16):
            f.write(os.urandom(256 * 1024) if i % 2 == 0 else bytes(256 * 1024))
    sc.img("convert", "-f", "raw", "-O", "qcow2", raw.name, name)
    raw.unlink()


def scenario_blockdev_backup(sc: Scenario) -> None:
    write_pattern_image(sc, "source.qcow2")
    sc.img("create", "-f", "qcow2", "target.qcow2", "4M")
    q = sc.qemu("vm",
                "-blockdev", "driver=qcow2,node-name=src,file.driver=file,file.filename=source.qcow2",
                "-blockdev", "driver=qcow2,node-name=tgt,file.driver=file,file.filename=target.qcow2")
    q.qmp.execute("blockdev-backup", **{"job-id": "backup0", "device": "src", "target": "tgt", "sync": "full"})
    event = q.qmp.wait_event("BLOCK_JOB_COMPLETED")
    if event["data"].get("error"):
        raise QMPError(f"backup: {event['data']['error']}")
    q.qmp.execute("query-block-jobs")
    q.quit()


def scenario_block_stream(sc: Scenario) -> None:
    write_pattern_image(sc, "base.qcow2")
    sc.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
    q = sc.qemu("vm", "-blockdev", "driver=qcow2,node-name=top,file.driver=file,file.filename=top.qcow2")
    q.qmp.execute("block-stream", **{"job-id": "stream0", "device": "top"})
    event = q.qmp.wait_event("BLOCK_JOB_COMPLETED")
    if event["data"].get("error"):
        raise QMPError(f"stream: {event['data']['error']}")
    q.quit()


def scenario_device_add_del_e1000(sc: Scenario) -> None:
    q = sc.qemu("vm")
    time.sleep(2)
    q.qmp.execute("device_add", driver="e1000", id="nic0")
    q.qmp.execute("qom-list", path="/machine/peripheral/nic0")
    q.qmp.execute("device_del", id="nic0")
    try:
        q.qmp.wait_event("DEVICE_DELETED", timeout=10)
        sc.notes.append("DEVICE_DELETED arrived")
    except QMPError:
        sc.notes.append("no DEVICE_DELETED within 10 s: ACPI unplug needs a guest OS to eject "
                        "(SeaBIOS has none); the request path ran")
    q.quit()


def scenario_qom_set(sc: Scenario) -> None:
    q = sc.qemu("vm", "-object", "iothread,id=io0")
    q.qmp.execute("qom-set", path="/objects/io0", property="poll-max-ns", value=1000)
    value = q.qmp.execute("qom-get", path="/objects/io0", property="poll-max-ns")
    if value != 1000:
        raise QMPError(f"qom-get gave {value!r}")
    q.qmp.execute("qom-list", path="/objects/io0")
    q.quit()


def scenario_query_status(sc: Scenario) -> None:
    q = sc.qemu("vm")
    time.sleep(1)
    q.qmp.execute("query-status")
    q.qmp.execute("stop")
    q.qmp.execute("query-status")
    q.qmp.execute("cont")
    q.qmp.execute("query-status")
    q.quit()


# Functions each scenario must have run (as caller or callee of a recorded pair): the proof that it
# exercised what it is named after, reported in the README.
PROOF = {
    "migrate-tcp": ["socket_start_outgoing_migration", "socket_start_incoming_migration"],
    "migrate-exec": ["exec_start_outgoing_migration", "exec_start_incoming_migration"],
    "migrate-file": ["file_start_outgoing_migration", "file_start_incoming_migration"],
    "migrate-multifd": ["multifd_send_setup", "multifd_recv_setup"],
    "migrate-postcopy": ["postcopy_start", "postcopy_ram_incoming_setup"],
    "migrate-background-snapshot": ["bg_migration_thread", "ram_write_tracking_start"],
    "savevm-loadvm": ["save_snapshot", "load_snapshot"],
    "blockdev-backup": ["qmp_blockdev_backup", "backup_run"],
    "block-stream": ["qmp_block_stream", "stream_run"],
    "device-add-del-e1000": ["qmp_device_add", "qmp_device_del", "pci_e1000_realize"],
    "qom-set": ["qmp_qom_set"],
    "query-status": ["qmp_query_status", "tb_gen_code"],
}

SCENARIOS = {
    "migrate-tcp": scenario_migrate_tcp,
    "migrate-exec": scenario_migrate_exec,
    "migrate-file": scenario_migrate_file,
    "migrate-multifd": scenario_migrate_multifd,
    "migrate-postcopy": scenario_migrate_postcopy,
    "migrate-background-snapshot": scenario_migrate_background_snapshot,
    "savevm-loadvm": scenario_savevm_loadvm,
    "blockdev-backup": scenario_blockdev_backup,
    "block-stream": scenario_block_stream,
    "device-add-del-e1000": scenario_device_add_del_e1000,
    "qom-set": scenario_qom_set,
    "query-status": scenario_query_status,
}


class Symbols:
    """The functions of a binary: address ranges from `nm -S`, each one's file from gcc's own data.

    The file is the static oracle's definition (functions.tsv, see `definition`), with the line
    table's file at the function's first address (`addr2line`, one batch: well under a second,
    where `nm -l` takes minutes on this binary) to choose between same-named `static` functions.
    """

    def __init__(self, binary: Path, paths: Paths, functions: list[dict[str, str]] | None = None):
        definitions: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for f in functions or ():
            definitions[(f["name"], f["linkage"])].append((f["file"], f["unit"]))
        out = subprocess.run(["nm", "--defined-only", "-S", str(binary)], check=True,
                             capture_output=True, text=True).stdout
        symbols = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) != 4 or parts[2] not in "tTwW":
                continue
            start, size = int(parts[0], 16), int(parts[1], 16)
            symbols.append((start, start + max(size, 1), parts[3], "static" if parts[2] == "t" else "extern"))
        located = subprocess.run(["addr2line", "-e", str(binary)], check=True, capture_output=True, text=True,
                                 input="".join(f"{s[0]:x}\n" for s in symbols)).stdout.splitlines()
        rows = []
        for (start, end, name, linkage), location in zip(symbols, located):
            file = location.rsplit(":", 1)[0]
            file = "" if file.startswith("??") else paths(file)
            rows.append((start, end, name, self.definition(definitions, name, linkage, file), linkage))
        rows.sort()
        self.starts = [r[0] for r in rows]
        self.rows = rows

    @staticmethod
    def definition(definitions: dict, name: str, linkage: str, located: str) -> str:
        """Return the file gcc's callgraph-info names as the function's definition (functions.tsv).

        The line table at a function's entry can name the unit that expanded the macro defining
        it (QOM's `CPU_CLASS` shows as accel/accel-common.c, gcc says include/hw/core/cpu.h), so
        the static oracle decides: its one definition of that name and linkage, else the one whose
        file or unit is the located file, else the located file.
        """
        candidates = definitions.get((name, linkage), [])
        files = {file for file, _ in candidates}
        if len(files) == 1:
            return next(iter(files))
        for file, unit in candidates:
            if located in (file, unit):
                return file
        return located

    def at(self, address: int):
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and self.rows[i][0] <= address < self.rows[i][1]:
            return self.rows[i]
        return None


def in_tree(file: str) -> bool:
    return bool(file) and not file.startswith("/") and not file.startswith("<build>")


def map_pairs(folder: Path, symbols: Symbols) -> tuple[set[tuple[str, ...]], list[str]]:
    """Return the (caller, caller_file, callee, callee_file, caller_linkage, callee_linkage) pairs of tree functions recorded under `folder`."""
    pairs = set()
    notes = []
    files = sorted(folder.glob("edges.*"))
    if not files:
        notes.append("no edge dump written (a process did not exit cleanly)")
    for path in files:
        header = ""
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    header = line
                    if "overflow 1" in line:
                        notes.append(f"{path.name}: hash set overflowed")
                    continue
                site, fn = (int(x, 16) for x in line.split())
                caller = symbols.at(site - 1)
                callee = symbols.at(fn)
                if caller is None or callee is None or callee[0] != fn:
                    continue
                if in_tree(caller[3]) and in_tree(callee[3]):
                    pairs.add((caller[2], caller[3], callee[2], callee[3], caller[4], callee[4]))
        if not header:
            notes.append(f"{path.name}: truncated dump")
    return pairs, notes


def run_all(tree: Path, build: Path, out: Path, only: list[str] | None = None) -> dict:
    binary = build / "qemu-system-x86_64"
    qemu_img = build / "qemu-img"
    root = build.parent / "runtime"
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    from extract_static import read_tsv
    functions_path = out / "functions.tsv.gz"
    symbols = Symbols(binary, Paths(tree, build), read_tsv(functions_path) if functions_path.exists() else None)
    print(f"symbols: {len(symbols.rows)} functions in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    results = {}
    all_rows = []
    for name, function in SCENARIOS.items():
        if only and name not in only:
            continue
        sc = Scenario(name, root, binary, qemu_img)
        start = time.monotonic()
        error = ""
        try:
            function(sc)
        except Exception as exc:  # a failed scenario is reported, never dropped
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            sc.cleanup()
        pairs, notes = map_pairs(sc.dir, symbols)
        ran = {p[0] for p in pairs} | {p[2] for p in pairs}
        missing = [f for f in PROOF.get(name, []) if f not in ran]
        notes.append("ran " + ", ".join(f for f in PROOF.get(name, []) if f in ran)
                     + (f"; did NOT run {', '.join(missing)}" if missing else ""))
        seconds = time.monotonic() - start
        results[name] = {"status": "failed" if error else "ok", "error": error, "pairs": len(pairs),
                         "seconds": round(seconds, 1), "notes": sc.notes + notes, "commands": sc.commands}
        print(f"{name}: {results[name]['status']} {len(pairs)} pairs {seconds:.0f} s {error}", file=sys.stderr)
        all_rows.extend((name, *pair) for pair in sorted(pairs))
    out.mkdir(parents=True, exist_ok=True)
    previous = {}
    edges_path = out / "runtime-edges.tsv.gz"
    if only and edges_path.exists():   # a partial run keeps the other scenarios' rows
        from extract_static import read_tsv
        kept = [r for r in read_tsv(edges_path) if r["scenario"] not in results]
        all_rows = [tuple(r.values()) for r in kept] + all_rows
        if (out / "runtime-scenarios.json").exists():
            previous = json.loads((out / "runtime-scenarios.json").read_text())
    write_tsv(edges_path, ["scenario", "caller", "caller_file", "callee", "callee_file",
                                     "caller_linkage", "callee_linkage"], sorted(all_rows))
    merged = {**previous, **results}
    (out / "runtime-scenarios.json").write_text(json.dumps(merged, indent=2) + "\n")
    return merged


if __name__ == "__main__":
    run_all(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:] or None)
