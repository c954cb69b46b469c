"""The HTML doc page in a real headless Chromium, driven over the DevTools protocol (a small client below).

The page must load without console errors, show its diagram, and a click on
a function box of the diagram must scroll to that function's section.
Screenshots are kept in `test-artifacts/`.  Chromium is installed with apt
under `CI=true` when missing; elsewhere the test skips, saying why.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers.ci import require_tool
from helpers.cli import MINI_QEMU, QUERY, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--remote-debugging-port=0", "--window-size=1280,900"]


def find_chromium() -> str:
    """Return the Chromium executable; install Debian's `chromium` under CI=true, else skip."""
    return require_tool(BROWSERS, "chromium", "the HTML page must be checked in a browser")


class DevTools:
    """A minimal Chrome DevTools protocol client: one browser websocket, commands to one page session."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.session = ""

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        """Send a command, wait for its answer (events meanwhile are kept); return its result."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, seconds: float = 30) -> dict:
        """Return the first event `method` (kept or coming), waiting up to `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.socket.recv()))
        raise AssertionError(f"no {method} within {seconds} s")

    def evaluate(self, expression: str) -> object:
        """Return the value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        import base64

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def errors(self) -> list[str]:
        """Return the console errors, uncaught exceptions and error log entries seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found


@pytest.fixture
def browser(tmp_path: Path):
    """Yield a DevTools client attached to a blank page of a fresh headless Chromium (closed afterwards)."""
    pytest.importorskip("websocket", reason="pip install websocket-client (the test extra) to drive Chromium")
    chromium = find_chromium()
    process = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline, seen = "", time.monotonic() + 60, []
        while not url and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            seen.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            url = match.group(1) if match else ""
        assert url, "Chromium did not start: " + "".join(seen[-10:])
        client = DevTools(url)
        target = client.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        client.session = client.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            client.send(f"{domain}.enable")
        client.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        yield client
        try:
            client.send("Browser.close", session=False)
        except Exception:  # the browser may close the socket before it answers
            pass
    finally:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


NODE = "migration/migration.c::migration_update_counters"
CENTRE_OF_BOX = """(() => {
  const group = [...document.querySelectorAll('.diagram svg g.node')].find(g => g.querySelector('title').textContent === %s);
  group.scrollIntoView({block: 'center'});
  const box = group.querySelector('a').getBoundingClientRect();
  return [box.left + box.width / 2, box.top + box.height / 2, group.querySelector('a').getAttribute('href')];
})()"""


def test_page_loads_shows_the_diagram_and_a_click_scrolls_to_the_section(browser: DevTools, tmp_path: Path) -> None:
    out = tmp_path / "doc"
    assert run_cli(["doc", MINI_QEMU, *QUERY, "-o", out, "--cache", tmp_path / "cache"]) == 0
    browser.send("Page.navigate", {"url": (out / "index.html").as_uri()})
    browser.wait_for("Page.loadEventFired")

    diagram = browser.evaluate("""(() => {
      const svg = document.querySelector('.diagram svg'); const box = svg.getBoundingClientRect();
      const style = getComputedStyle(svg);
      return {width: box.width, height: box.height, display: style.display, visibility: style.visibility,
              links: svg.querySelectorAll('g.node a[href^="#"]').length, title: document.title};
    })()""")
    assert diagram["width"] > 300 and diagram["height"] > 100, diagram
    assert diagram["display"] != "none" and diagram["visibility"] == "visible"
    assert diagram["links"] >= 9 and diagram["title"] == "qmp:migrate → assign:threshold_size"

    browser.evaluate("document.getElementById('diagram').scrollIntoView()")
    browser.screenshot(ARTIFACTS / "doc-mini-qemu-diagram.png")
    x, y, href = browser.evaluate(CENTRE_OF_BOX % json.dumps(NODE))
    assert href == "#migration_update_counters"
    before = browser.evaluate("window.scrollY")
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
    deadline = time.monotonic() + 10
    while browser.evaluate("location.hash") != href and time.monotonic() < deadline:
        time.sleep(0.1)
    landed = browser.evaluate("""(() => {
      const top = document.getElementById('migration_update_counters').getBoundingClientRect().top;
      return {hash: location.hash, top: top, height: innerHeight, y: scrollY};
    })()""")
    assert landed["hash"] == href
    assert landed["y"] != before and 0 <= landed["top"] < landed["height"] / 2, landed
    browser.screenshot(ARTIFACTS / "doc-mini-qemu-after-click.png")
    assert browser.errors() == []
