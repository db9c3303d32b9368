"""Open an HTML page in headless Chromium and check that every plotly figure rendered.

Talks to the browser through the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so it needs no driver, no websocket
library and no open port. Used by the report's browser test; usable on any page grokscope writes.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)

_TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
)

# Counted in the page: plotly's containers, and those that hold a drawn <svg class="main-svg">.
_COUNT_JS = """JSON.stringify({
  figures: document.querySelectorAll('.grokscope-figure').length,
  plots: document.querySelectorAll('.js-plotly-plot').length,
  rendered: Array.from(document.querySelectorAll('.js-plotly-plot')).filter(
      function (d) { return d.querySelector('svg.main-svg') !== null; }).length,
  title: document.title
})"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable ($GROKSCOPE_CHROMIUM first), or None."""
    env = os.environ.get("GROKSCOPE_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(frozen=True)
class RenderCheck:
    """What the browser saw: figure containers in the page, plotly plots, plots with an SVG drawn,
    and every JavaScript error (uncaught exceptions, console.error, failed loads)."""

    figures: int
    plots: int
    rendered: int
    errors: list = field(default_factory=list)
    title: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.figures == self.plots == self.rendered and not self.errors

    def to_dict(self) -> dict:
        return {
            "figures": self.figures,
            "plots": self.plots,
            "rendered": self.rendered,
            "errors": list(self.errors),
            "title": self.title,
            "seconds": self.seconds,
            "ok": self.ok,
        }


class _Pipe:
    """The DevTools protocol over two pipes: write commands, read NUL-separated JSON messages."""

    def __init__(self, write_fd: int, read_fd: int):
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict | None:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the DevTools pipe (it crashed or exited).")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        """Send a command and wait for its answer; events that arrive meanwhile are kept."""
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise TimeoutError(f"the browser did not answer {method} within {timeout:.0f} s.")
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise RuntimeError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float) -> dict | None:
        """Wait for an event by name (looking at those already kept first)."""
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                return None
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg


def _above_9(fd: int) -> int:
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _errors_from(events: list[dict]) -> list[str]:
    out = []
    for ev in events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            desc = (d.get("exception") or {}).get("description") or d.get("text", "exception")
            out.append(f"uncaught: {desc.splitlines()[0] if desc else desc}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            out.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            e = params["entry"]
            out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
    return out


def check_rendering(
    path: str | os.PathLike, chromium: str | None = None, timeout: float = 60.0, settle: float = 0.5
) -> RenderCheck:
    """Open `path` in headless Chromium, wait until the page has loaded and its plots stop changing,
    and return the counts of figures, plotly plots and plots with an SVG drawn, plus every
    JavaScript error the page logged."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "no Chromium found: install it (Debian: apt-get install chromium) or set $GROKSCOPE_CHROMIUM."
        )
    url = Path(path).resolve().as_uri()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grokscope-chromium-") as profile:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Lift the child's ends above 9 so that moving them onto 3 and 4 cannot clobber one another.
        to_browser_r, from_browser_w = (_above_9(fd) for fd in (to_browser_r, from_browser_w))

        # A tiny Python trampoline copies the pipe ends onto the descriptors Chromium reads (3) and
        # writes (4), then becomes Chromium (no shell: POSIX shells need not handle descriptors >= 10).
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _TRAMPOLINE,
                str(to_browser_r),
                str(from_browser_w),
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.events.clear()
            pipe.call("Page.navigate", {"url": url}, session=session)
            if pipe.wait_event("Page.loadEventFired", timeout) is None:
                raise TimeoutError(f"{url} did not finish loading within {timeout:.0f} s.")
            counts, last, stable_since = {}, None, time.monotonic()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                res = pipe.call("Runtime.evaluate", {"expression": _COUNT_JS, "returnByValue": True}, session=session)
                counts = json.loads(res["result"]["value"])
                if counts != last:
                    last, stable_since = counts, time.monotonic()
                elif counts["rendered"] >= counts["figures"] or time.monotonic() - stable_since > 5 * settle + 2:
                    if time.monotonic() - stable_since >= settle:
                        break
                time.sleep(0.1)
            try:
                pipe.call("Browser.close", timeout=5)
            except (TimeoutError, RuntimeError):
                pass
        finally:
            os.close(to_browser_w)
            os.close(from_browser_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return RenderCheck(
        figures=counts.get("figures", 0),
        plots=counts.get("plots", 0),
        rendered=counts.get("rendered", 0),
        errors=_errors_from(pipe.events),
        title=counts.get("title", ""),
        seconds=time.monotonic() - t0,
    )
