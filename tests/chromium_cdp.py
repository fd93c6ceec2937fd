"""Headless Chromium driven over the DevTools protocol, to read what a served console shows.

textual-serve draws the terminal with xterm.js on canvases, so the text is not in the DOM.
We read xterm's own screen buffer instead: `Runtime.queryObjects` finds the page's objects,
and the one holding a `terminal` with a `buffer` is textual-serve's session; its lines are what
the page has rendered. `Page.captureScreenshot` keeps a picture of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

#: Called on the array of every object in the page: the text of each xterm screen buffer.
READ_TERMINALS = """function () {
  const screens = [];
  for (const o of this) {
    try {
      const t = o && o.terminal;
      if (t && t.buffer && t.buffer.active && typeof t.buffer.active.getLine === 'function') {
        const b = t.buffer.active, lines = [];
        for (let i = 0; i < b.length; i++) {
          const line = b.getLine(i);
          lines.push(line ? line.translateToString(true) : '');
        }
        screens.push(lines.join('\\n'));
      }
    } catch (e) {}
  }
  return screens.join('\\n');
}"""

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """One page's DevTools websocket: call(method, **params) -> result."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == my_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def terminal_text(self) -> str:
        """What the page's xterm terminals show now."""
        proto = await self.call("Runtime.evaluate", expression="Object.prototype")
        objects = await self.call(
            "Runtime.queryObjects", prototypeObjectId=proto["result"]["objectId"]
        )
        result = await self.call(
            "Runtime.callFunctionOn",
            objectId=objects["objects"]["objectId"],
            functionDeclaration=READ_TERMINALS,
            returnByValue=True,
        )
        await self.call("Runtime.releaseObject", objectId=objects["objects"]["objectId"])
        return str(result["result"].get("value") or "")

    async def screenshot(self) -> bytes:
        shot = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


async def _drive(port: int, wanted: list[str], timeout_s: float) -> tuple[str, bytes]:
    """Read the page's terminal until every `wanted` text is there (or time is up)."""
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        pages: list[dict[str, Any]] = []
        while not pages:
            assert time.monotonic() < deadline, "chromium opened no page"
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [t for t in await response.json() if t.get("type") == "page"]
            await asyncio.sleep(0.1)
        ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        devtools = DevTools(ws)
        text = ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                text = await devtools.terminal_text()
            except RuntimeError:  # the page is still navigating: its context changed
                await asyncio.sleep(0.5)
                continue
            if all(w in text for w in wanted):
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(0.5)  # let the canvas catch up with the buffer for the picture
        picture = await devtools.screenshot()
        await ws.close()
        return text, picture


def open_and_read(
    url: str,
    profile: Path,
    *,
    wanted: list[str],
    screenshot: Path,
    timeout_s: float = 90.0,
    window: tuple[int, int] = (1800, 2200),
) -> str:
    """Open `url` in headless Chromium until every `wanted` text is on screen (or time is up).

    Returns the terminal's text at the end; the screenshot is saved either way.
    """
    binary = chromium_binary()
    assert binary is not None
    size = f"--window-size={window[0]},{window[1]}"
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", size, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort"
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        text, picture = asyncio.run(_drive(port, wanted, timeout_s))
        screenshot.write_bytes(picture)
        return text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class HeadlessChromium:
    """One headless Chromium on `url` with a fresh profile, open until `close()`.

    For tests that need several browsers open at once (open_and_read opens and closes one).
    """

    def __init__(self, url: str, profile: Path, window: tuple[int, int] = (1800, 2200)) -> None:
        binary = chromium_binary()
        assert binary is not None
        self.profile = profile
        self.proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}",
                url,
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._port: int | None = None

    @property
    def devtools_port(self) -> int:
        if self._port is None:
            port_file = self.profile / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort"
                assert self.proc.poll() is None, f"chromium exited with {self.proc.returncode}"
                time.sleep(0.1)
            self._port = int(port_file.read_text().split()[0])
        return self._port

    def read(self, wanted: list[str], screenshot: Path, timeout_s: float = 90.0) -> str:
        """The terminal's text once every `wanted` text is on it (or at the timeout)."""
        text, picture = asyncio.run(_drive(self.devtools_port, wanted, timeout_s))
        screenshot.write_bytes(picture)
        return text

    def close(self) -> None:
        """End the browser (and its helpers: it leads its own process group)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
