"""A real browser for tests of the registry's page: Debian's chromium, headless, via Selenium.

Selenium is handed the paths of `chromium` and `chromedriver` (from `chromium-driver`): its
driver manager would try to download both, which cannot work here and must not be tried.
Chromium gets a fresh profile in the test's directory and the flags that keep it from
reaching out on its own (component updates, sync, background networking, QUIC probes), so
everything it fetches is what the page asks of the registry on 127.0.0.1. Its console is
recorded (`goog:loggingPrefs`), and `shot()` keeps full-page screenshots next to the
profile for a person to look at.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.tools import in_ci, require_path

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container: the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a small /dev/shm makes renderers crash
)
#: axe-core, the accessibility engine browsers' own audits use (npm; `make test` installs it).
AXE = Path(__file__).resolve().parents[1] / ".node" / "node_modules" / "axe-core" / "axe.min.js"
#: What axe checks: WCAG 2.x A and AA, and its best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
#: The Debian packages that provide each program.
PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}
T = TypeVar("T")
#: Set on a test item by tests/integration/conftest.py: did the test's call fail?
CALL_FAILED = pytest.StashKey[bool]()
#: Widths a failed page test is photographed at: a desktop and a phone (CSS pixels).
FAILURE_WIDTHS = {"desktop": 1280, "phone": 390}


def require_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver; skip the test without them (fail under CI)."""
    found = {name: shutil.which(name) for name in PACKAGES}
    missing = [PACKAGES[name] for name, path in found.items() if path is None]
    if missing:
        message = f"no headless browser (apt-get install -y {' '.join(missing)})"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(found["chromium"]), str(found["chromedriver"])


class Browser:
    """One headless Chromium with its own profile under `workdir`; `quit()` ends it."""

    def __init__(self, workdir: Path, width: int = 1280, height: int = 1000) -> None:
        self.workdir = Path(workdir)
        self.width = width
        self.height = height
        self.console: list[dict[str, Any]] = []
        self.screenshots: list[Path] = []
        self._driver: Any = None

    def start(self) -> Browser:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, chromedriver = require_browser()
        self.workdir.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.workdir / 'profile'}")
        options.add_argument(f"--window-size={self.width},{self.height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(
            executable_path=chromedriver,
            log_output=str(self.workdir / "chromedriver.log"),
            # Selenium's own process environment, without its usage statistics.
            env={**os.environ, "SE_AVOID_STATS": "true"},
        )
        self._driver = webdriver.Chrome(options=options, service=service)
        return self

    @property
    def driver(self) -> Any:
        if self._driver is None:
            raise RuntimeError("the browser was not started")
        return self._driver

    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait(self, condition: Callable[[Any], T], timeout: float = 30.0) -> T:
        """Wait until `condition(driver)` is truthy; its value."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)

    def read_console(self) -> list[dict[str, Any]]:
        """Console entries since the last call (each {level, message, source, timestamp});
        all of them are kept in `console` too."""
        entries = self.driver.get_log("browser")
        self.console.extend(entries)
        return entries

    def console_errors(self) -> list[dict[str, Any]]:
        """Every console entry so far at error level (`SEVERE`): script errors, CSP
        violations, failed loads."""
        self.read_console()
        return [entry for entry in self.console if entry.get("level") == "SEVERE"]

    def resize(self, width: int, height: int = 844) -> None:
        """Lay the page out at `width` CSS pixels as a phone or a desktop would (device
        metrics, not the window: a headless window has a minimum width)."""
        self.width, self.height = width, height
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page (not only the window), as `NN-name.png`."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics["cssContentSize"]
        capture = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": max(size["width"], self.width),
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path = self.workdir / f"{len(self.screenshots) + 1:02d}-{name}.png"
        path.write_bytes(base64.b64decode(capture["data"]))
        self.screenshots.append(path)
        return path

    def shots_of_failure(self) -> list[Path]:
        """Screenshots of the page as it stands, at desktop and at phone width."""
        paths = []
        for name, width in FAILURE_WIDTHS.items():
            self.resize(width)
            paths.append(self.shot(f"failure-{name}"))
        return paths

    def accessibility_problems(self) -> list[str]:
        """What axe-core finds wrong with the page as it stands: one line per rule broken,
        naming the elements (empty when nothing is)."""
        source = require_path(AXE, "make test (npm install axe-core)").read_text()
        self.driver.execute_script(source)
        violations = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
            ".then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at '"
            " + v.nodes.map(n => n.target.join(' ')).join(', '))))"
            ".catch(e => done(['axe failed: ' + e]));",
            AXE_TAGS,
        )
        return list(violations)

    def quit(self) -> None:
        """End chromedriver and every browser process it started."""
        if self._driver is not None:
            driver, self._driver = self._driver, None
            driver.quit()

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.quit()
