"""The page in a real browser: Debian's headless Chromium driven by Selenium against a
running pipeline.  Every actor's node shows, the counters rise, the pause button
stops the source (checked through ``stats()``), resume starts it again; the
screenshot of the page goes to ``$PARTITA_SCREENSHOT`` when that is set (``docs/images/ui.png``
for the docs: ``PARTITA_SCREENSHOT=docs/images/ui.png pytest tests/ui/test_browser.py``),
else to the test's temp dir, so a test run leaves the checkout clean."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from partita.runtime import ActorState, GraphStats

from ._pipeline import Live, live_pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
]

selenium = pytest.importorskip("selenium", reason="needs selenium (the test extra)")


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1250",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _drive(live: Live, stats: Callable[[], GraphStats], tmp_path: Path) -> None:
    """The browser's side, in a worker thread; ``stats`` reads the graph's stats in trio."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    names = [a.name for a in live.supervisor.graph]
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 15, poll_frequency=0.05)
        browser.get(live.ui.url)
        for name in names:
            wait.until(lambda b, n=name: b.find_elements(By.ID, f"node-{n}"))
        node = browser.find_element(By.ID, "node-source")

        def click(element: Any) -> None:
            # the page enables a button once its latest update says the action applies
            wait.until(ec.element_to_be_clickable(element)).click()

        def shown_rows(b: Any) -> int:
            return int(node.find_element(By.CLASS_NAME, "rows").text.replace(",", "") or 0)

        first = shown_rows(browser)
        wait.until(lambda b: shown_rows(b) > first)  # the counters rise
        wait.until(lambda b: b.find_element(By.ID, "graph-state").text.lower() == "running")
        # a few seconds of the throughput plot for the picture
        wait.until(lambda b: b.execute_script("return view.history.length") >= 12)
        screenshot = Path(os.environ.get("PARTITA_SCREENSHOT") or tmp_path / "ui.png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(screenshot))

        def server_time(b: Any) -> float:
            return float(b.execute_script("return view.last.time"))

        click(browser.find_element(By.ID, "pause-graph"))
        wait.until(lambda b: b.find_element(By.ID, "graph-state").text.lower() == "paused")
        assert stats().state is ActorState.PAUSED
        assert stats()["source"].state is ActorState.PAUSED
        # the pause holds at the next batch boundary: after it, the source sends nothing
        t0 = server_time(browser)
        wait.until(lambda b: server_time(b) >= t0 + 0.5)
        held = stats()["source"].rows_out
        t1 = server_time(browser)
        wait.until(lambda b: server_time(b) >= t1 + 1.0)
        assert stats()["source"].rows_out == held
        assert browser.find_element(By.ID, "pause-graph").get_attribute("disabled")

        click(browser.find_element(By.ID, "resume-graph"))
        wait.until(lambda b: stats()["source"].rows_out > held)
        assert stats().state is ActorState.RUNNING

        part = browser.find_element(By.ID, "node-partition-0")
        click(part.find_element(By.CSS_SELECTOR, "button.pause"))
        wait.until(lambda b: stats()["partition-0"].state is ActorState.PAUSED)
        assert stats()["partition-1"].state is ActorState.RUNNING
        wait.until(lambda b: "state-paused" in (part.get_attribute("class") or ""))
        click(part.find_element(By.CSS_SELECTOR, "button.resume"))
        wait.until(lambda b: stats()["partition-0"].state is ActorState.RUNNING)

        click(browser.find_element(By.ID, "cancel-graph"))
        wait.until(lambda b: b.find_element(By.ID, "graph-state").text.lower() == "completed")
        logs = [
            entry
            for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and "api/stream" not in entry["message"]
        ]
        assert logs == []
    finally:
        browser.quit()


async def test_the_page_shows_the_graph_and_pauses_it_in_a_real_browser(tmp_path: Path) -> None:
    async with live_pipeline(partitions=3) as live:

        def stats() -> GraphStats:
            return trio.from_thread.run_sync(live.supervisor.stats)

        with trio.fail_after(60):
            await trio.to_thread.run_sync(_drive, live, stats, tmp_path)
        assert live.supervisor.state is ActorState.COMPLETED
