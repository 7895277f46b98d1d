"""Benchmark: the pages in headless Chromium — time from ``POST /api/v1/verify`` (by another
client, as an HIS would) to the result visible on the staff page and the kiosk; first paint of
``/`` and ``/kiosk``; page weight.

    .venv/bin/python -m bench.page            # 200 verifications
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.verify import machine, pct, start, stop
from terminal.demo import demo_environment

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Arm a promise that resolves (epoch ms) on the frame after the expected text appears.
ARM = """(expected) => { window.__visible = new Promise((resolve) => {
  const el = document.getElementById(expected.id);
  const obs = new MutationObserver(() => {
    if (el.textContent.includes(expected.text)) {
      obs.disconnect();
      requestAnimationFrame(() => resolve(performance.timeOrigin + performance.now()));
    }
  });
  obs.observe(el, {subtree: true, childList: true, characterData: true});
}); }"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    sim, sim_url = start(["registry-sim", "--port", "0"], {}, "stdout")
    data = Path(tempfile.mkdtemp(prefix="tiepdon-bench-page-"))
    daemon, url = start(["serve"], {**demo_environment(sim_url, data),
                                    "TIEPDON_HTTP_PORT": "0"}, "stderr")
    people = [
        ({"card_code": "GD4010111077012", "full_name": "Nguyễn Tiến Đạt",
          "date_of_birth": "29/03/1988"}, "Nguyễn Tiến Đạt", "NGUYỄN T. Đ."),
        ({"card_code": "HT3790200000003", "full_name": "Phạm Văn Sơn",
          "date_of_birth": "02/02/1950"}, "Phạm Văn Sơn", "PHẠM V. S."),
    ]
    staff_ms: list[float] = []
    kiosk_ms: list[float] = []
    try:
        with sync_playwright() as p, httpx.Client(base_url=url, timeout=30) as client:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            staff = browser.new_page(viewport={"width": 1366, "height": 768})
            kiosk = browser.new_page(viewport={"width": 1920, "height": 1080})
            weights: dict[str, int] = {}
            for page, path in ((staff, "/"), (kiosk, "/kiosk")):
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                # every local resource the page loaded (the event stream and API calls aside)
                weights[path] = int(page.evaluate("""performance.getEntriesByType('resource')
                    .filter(r => !r.name.includes('/api/'))
                    .reduce((n, r) => n + r.decodedBodySize, 0)
                    + performance.getEntriesByType('navigation')[0].decodedBodySize"""))
            paint = {path: page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
                for page, path in ((staff, "/"), (kiosk, "/kiosk"))}
            for i in range(args.count):
                body, staff_text, kiosk_text = people[i % 2]
                staff.evaluate(ARM, {"id": "name", "text": staff_text})
                kiosk.evaluate(ARM, {"id": "name", "text": kiosk_text})
                t0 = time.time() * 1000
                client.post("/api/v1/verify", json=body)
                staff_ms.append(float(staff.evaluate("window.__visible")) - t0)
                kiosk_ms.append(float(kiosk.evaluate("window.__visible")) - t0)
            browser.close()
    finally:
        stop(daemon)
        stop(sim)
    print(f"machine: {machine()}; Chromium headless (Debian), daemon and simulator on loopback")
    print("| page | POST → visible p50 ms | p99 ms | first contentful paint ms | weight KB |")
    print("|---|---|---|---|---|")
    for name, values, path in (("staff /", staff_ms, "/"), ("kiosk /kiosk", kiosk_ms, "/kiosk")):
        print(f"| {name} | {statistics.median(values):.1f} | {pct(values, 99):.1f} "
              f"| {paint[path]:.0f} | {weights[path] / 1024:.1f} |")
    ok = pct(staff_ms, 99) < 150 and pct(kiosk_ms, 99) < 150 and max(weights.values()) < 300 * 1024
    print(f"targets: < 150 ms p99 and < 300 KB: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
