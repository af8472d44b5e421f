"""Browse the built documentation site in headless Chromium and print what a reader sees, as JSON.

``python tests/docs_browser.py SITE_DIR CHROMIUM QUERY``, run by ``tests/test_docs.py`` inside a
network namespace of its own (``unshare --net``, loopback only): it serves SITE_DIR over HTTP on
127.0.0.1 (Material's search runs in a web worker, which a ``file://`` page may not start), drives
Chromium through the DevTools protocol on a pipe (``--remote-debugging-pipe``: no port, no
websocket library), and reports the home page's navigation, a page reached by following a
navigation link, and the search results for QUERY typed into the search box.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any


class DevTools:
    """The DevTools protocol over Chromium's pipe: fd 3 carries commands, fd 4 answers, NUL-separated."""

    def __init__(self, chromium: str, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def child_fds() -> None:
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            command,
            preexec_fn=child_fds,
            pass_fds=(3, 4),  # kept open after preexec_fn, which moved the pipes there
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": profile},
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        if self.session is None:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && document.querySelector('.md-content') !== null")

    def wait_for(self, condition: str, seconds: float = 20.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({condition})"):
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def serve(site: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


NAV_LINKS = "[...document.querySelectorAll('.md-nav--primary a.md-nav__link[href]')].map(a => a.href)"
SECTIONS = (
    "[...document.querySelectorAll('.md-nav--primary > .md-nav__list > .md-nav__item > label.md-nav__link, "
    ".md-nav--primary > .md-nav__list > .md-nav__item > a.md-nav__link')].map(e => e.textContent.trim())"
)
RESULTS = "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)"


def browse(site: str, chromium: str, query: str) -> dict[str, Any]:
    server, root = serve(site)
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(chromium, profile)
        try:
            browser.open(root)
            seen: dict[str, Any] = {
                "title": browser.evaluate("document.title"),
                "sections": browser.evaluate(SECTIONS),
                "links": browser.evaluate(NAV_LINKS),
            }
            # Follow the navigation's link to the score command's page, as a reader clicks it.
            target = next((link for link in seen["links"] if link.endswith("/reference/cli/scoring-score/")), None)
            seen["followed"] = target
            if target is not None:
                browser.evaluate(
                    "document.querySelector('.md-nav--primary a.md-nav__link[href$=\"reference/cli/scoring-score/\"]')"
                    ".click()"
                )
                browser.wait_for(f"location.href === {json.dumps(target)} && document.readyState === 'complete'")
                seen["followed_heading"] = browser.evaluate("document.querySelector('.md-content h1')?.textContent")
                seen["followed_active"] = browser.evaluate(
                    "document.querySelector('.md-nav--primary a.md-nav__link--active')?.textContent.trim()"
                )
            # Type the query into the search box; Material answers from its worker's index.
            browser.open(root)
            browser.evaluate(
                "(() => { const box = document.querySelector('.md-search__input'); box.focus(); "
                f"box.value = {json.dumps(query)}; box.dispatchEvent(new KeyboardEvent('keyup', {{key: 'e'}})); "
                "box.dispatchEvent(new Event('input', {bubbles: true})); })()"
            )
            browser.wait_for(f"{RESULTS}.length > 0")
            seen["results"] = browser.evaluate(RESULTS)
            seen["results_meta"] = browser.evaluate("document.querySelector('.md-search-result__meta')?.textContent")
        finally:
            browser.close()
            server.shutdown()
    return seen


if __name__ == "__main__":
    print(json.dumps(browse(sys.argv[1], sys.argv[2], sys.argv[3])))
