"""Staff page and kiosk together in headless Chromium: live updates on both, the chip's
progressive display, the kiosk's privacy, recovery after a daemon restart. Screenshots of the
main states go to test-artifacts/screenshots/ (look at them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from readers.doubles.vcard import Faults
from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.chip import serve
from tests.helpers.daemon import daemon_services, sim_control, terminal_settings
from tests.helpers.offline import SON, offline_daemon
from tests.helpers.paths import ROOT
from tests.helpers.samples import CCCD_EXAMPLE

pytestmark = pytest.mark.browser
SHOTS = ROOT / "test-artifacts" / "screenshots"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
def pages(browser: Browser, daemon: BackgroundServer) -> Iterator[tuple[Page, Page]]:
    staff_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    kiosk_ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    staff, kiosk = staff_ctx.new_page(), kiosk_ctx.new_page()
    staff.goto(daemon.url + "/")
    kiosk.goto(daemon.url + "/kiosk")
    expect(staff.locator("#stream")).to_have_attribute("data-status", "ok")
    expect(kiosk.locator("#link")).to_have_attribute("data-status", "ok")
    yield staff, kiosk
    staff_ctx.close()
    kiosk_ctx.close()


def post(daemon: BackgroundServer, body: dict[str, str]) -> None:
    httpx.post(f"{daemon.url}/api/v1/verify", json=body, timeout=10)


def test_one_verification_shows_on_both_pages(pages: tuple[Page, Page],
                                              daemon: BackgroundServer) -> None:
    staff, kiosk = pages
    post(daemon, {"qr": CCCD_EXAMPLE})
    expect(staff.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    expect(kiosk.locator("body")).to_have_attribute("data-status", "eligible")
    expect(kiosk.locator("#name")).to_have_text("NGUYỄN V. B.")
    expect(staff.locator("#recent li")).to_have_count(1)
    shot(staff, "staff-eligible")
    shot(kiosk, "kiosk-eligible")
    text = kiosk.locator("body").inner_text()
    for private in ("001098012345", "SV4010123456789", "Nguyễn Văn B", "NGUYỄN VĂN B",
                    "01/01/2000"):
        assert private not in text
    post(daemon, {"card_code": "HC4010200000005", "full_name": "Vũ Đức Thắng",
                  "date_of_birth": "11/11/1970"})
    expect(staff.locator("#status-word")).to_have_text("KHÔNG ĐỦ ĐIỀU KIỆN")
    expect(kiosk.locator("body")).to_have_attribute("data-status", "not_eligible")
    shot(staff, "staff-not-eligible")
    post(daemon, {"card_code": "AK4010200000040", "full_name": "Mai Thanh Tâm",
                  "date_of_birth": "07/07/1977"})
    expect(staff.locator("#status-word")).to_have_text("CẦN KIỂM TRA")
    expect(kiosk.locator("body")).to_have_attribute("data-status", "needs_review")
    shot(staff, "staff-needs-review")
    expect(staff.locator("#recent li")).to_have_count(3)


def test_kiosk_shows_html_as_text(pages: tuple[Page, Page], daemon: BackgroundServer) -> None:
    _staff, kiosk = pages
    post(daemon, {"qr": "001098012345||<b>X</b> <img src=x>|01012000|Nữ|Hà Nội|01012022"})
    expect(kiosk.locator("body")).not_to_have_attribute("data-status", "idle")
    assert kiosk.locator("main b, main img").count() == 0


def test_kiosk_clears_itself(browser: Browser, sim: BackgroundServer,
                             tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data", kiosk__clear_seconds=1)
    server = start_background(create_app(settings, daemon_services(settings)))
    try:
        ctx = browser.new_context()
        kiosk = ctx.new_page()
        kiosk.goto(server.url + "/kiosk")
        expect(kiosk.locator("#link")).to_have_attribute("data-status", "ok")
        post(server, {"qr": CCCD_EXAMPLE})
        expect(kiosk.locator("body")).to_have_attribute("data-status", "eligible")
        expect(kiosk.locator("body")).to_have_attribute("data-status", "idle", timeout=5000)
        ctx.close()
    finally:
        server.stop()


def test_chip_read_shows_identity_then_eligibility_then_photo(
        browser: Browser, sim: BackgroundServer, tmp_path: Path) -> None:
    server = serve(sim, tmp_path, Faults(slow_ms=15, extended=False))
    try:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        page = ctx.new_page()
        page.add_init_script("""
            window.__seen = [];
            new MutationObserver(() => {
              const s = document.getElementById("result");
              const img = document.getElementById("photo");
              if (!s) return;
              const state = [s.dataset.status, document.getElementById("name").textContent,
                             img && !img.hidden && img.naturalWidth > 0 ? "photo" : ""].join("|");
              if (window.__seen[window.__seen.length - 1] !== state) window.__seen.push(state);
            }).observe(document, {subtree: true, childList: true, attributes: true,
                                  characterData: true});
            document.addEventListener("load", () => {}, true);
        """)
        page.goto(server.url + "/")
        expect(page.locator("#stream")).to_have_attribute("data-status", "ok")
        page.locator("#chip-demo").click()
        expect(page.locator("#photo")).to_be_visible(timeout=15000)
        page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
        seen: list[str] = page.evaluate("window.__seen.concat([document.getElementById('result')"
                                        ".dataset.status + '|' + document.getElementById('name')"
                                        ".textContent + '|photo'])")
        pending = next(i for i, s in enumerate(seen) if s.startswith("pending|Nguyễn Tiến Đạt"))
        decided = next(i for i, s in enumerate(seen) if s.startswith("eligible|") and
                       not s.endswith("|photo"))
        photo = next(i for i, s in enumerate(seen) if s.endswith("|photo"))
        assert pending < decided < photo, seen
        shot(page, "staff-chip")
        ctx.close()
    finally:
        server.stop()


def test_offline_state_screenshot(browser: Browser, sim: BackgroundServer,
                                  tmp_path: Path) -> None:
    server = offline_daemon(sim, tmp_path)
    try:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        page = ctx.new_page()
        page.goto(server.url + "/")
        expect(page.locator("#stream")).to_have_attribute("data-status", "ok")
        sim_control(sim, fault="http500")
        post(server, SON)
        expect(page.locator("#offline")).to_be_visible()
        shot(page, "staff-offline")
        ctx.close()
    finally:
        server.stop()


def test_pages_recover_after_a_daemon_restart(browser: Browser, sim: BackgroundServer,
                                              tmp_path: Path) -> None:
    settings = terminal_settings(sim.url, tmp_path / "data")
    first = start_background(create_app(settings, daemon_services(settings)))
    port = first.port
    ctx = browser.new_context()
    staff, kiosk = ctx.new_page(), ctx.new_page()
    staff.goto(first.url + "/")
    kiosk.goto(first.url + "/kiosk")
    expect(staff.locator("#stream")).to_have_attribute("data-status", "ok")
    first.stop()
    expect(staff.locator("#stream")).to_have_attribute("data-status", "down", timeout=10000)
    second = start_background(create_app(settings, daemon_services(settings)), port=port)
    try:
        expect(staff.locator("#stream")).to_have_attribute("data-status", "ok", timeout=15000)
        expect(kiosk.locator("#link")).to_have_attribute("data-status", "ok", timeout=15000)
        post(second, {"qr": CCCD_EXAMPLE})
        expect(staff.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
        expect(kiosk.locator("body")).to_have_attribute("data-status", "eligible")
    finally:
        ctx.close()
        second.stop()


def test_wide_second_screen(pages: tuple[Page, Page], daemon: BackgroundServer) -> None:
    staff, _ = pages
    staff.set_viewport_size({"width": 1920, "height": 1080})
    post(daemon, {"qr": CCCD_EXAMPLE})
    expect(staff.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    box = staff.locator("#recent-box").bounding_box()
    result = staff.locator("#result").bounding_box()
    assert box and result and box["x"] > result["x"]  # the shift list sits beside the result
    shot(staff, "staff-1920")


@pytest.mark.parametrize("faults", [Faults(aa="ec_wrong"), Faults(ca="clone")],
                         ids=["aa-clone", "ca-clone"])
def test_a_cloned_chip_ends_needs_review_on_the_page(
        browser: Browser, sim: BackgroundServer, tmp_path: Path,
        faults: Faults) -> None:
    """Identity time says eligible; the failed Active or Chip Authentication turns the page's
    card to needs-review with the copy badge, and the shift list keeps one row for the
    patient."""
    server = serve(sim, tmp_path, faults)
    try:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        page = ctx.new_page()
        page.goto(server.url + "/")
        expect(page.locator("#stream")).to_have_attribute("data-status", "ok")
        page.locator("#chip-demo").click()
        expect(page.locator("#pa-badge")).to_have_attribute("data-status", "copy",
                                                             timeout=15000)
        expect(page.locator("#result")).to_have_attribute("data-status", "needs_review")
        expect(page.locator("#pa-badge")).to_contain_text("BẢN SAO")
        expect(page.locator("#recent li")).to_have_count(1)
        expect(page.locator("#recent li").first).to_have_attribute("data-status",
                                                                  "needs_review")
        shot(page, f"staff-chip-copy-{faults.ca if faults.ca == 'clone' else 'aa'}")
        ctx.close()
    finally:
        server.stop()
