"""The staff page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The browser may only talk to the daemon: any other request fails the test (no CDN).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from readers.doubles.render import write_clip
from readers.doubles.vcard import DEMO_PERSON, Faults
from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.cards import demo_back, demo_front, plain_desk
from tests.helpers.chip import OTHER_PERSON, other_card, serve, serve_with_services
from tests.helpers.daemon import daemon_services, sim_control, terminal_settings
from tests.helpers.offline import offline_daemon
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, daemon: BackgroundServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    foreign: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith(daemon.url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(daemon.url + "/")
    expect(pg.locator("#stream")).to_have_attribute("data-status", "ok")
    yield pg
    context.close()
    assert foreign == [], "the page fetched something from outside the terminal"
    assert errors == [], errors


def scan(page: Page, text: str) -> None:
    """What a keyboard-wedge scanner does: type the payload, then Enter."""
    page.locator("#wedge").fill(text)
    page.keyboard.press("Enter")


def test_scanned_cccd_qr_shows_the_answer(page: Page) -> None:
    scan(page, CCCD_EXAMPLE)
    expect(page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    expect(page.locator("#result")).to_have_attribute("data-status", "eligible")
    expect(page.locator("#name")).to_have_text("Nguyễn Văn B")
    facts = page.locator("#facts")
    expect(facts).to_contain_text("4 — 80%")
    expect(facts).to_contain_text("31/12/2026")
    expect(facts).to_contain_text("đúng cơ sở này")
    warning = page.locator('#messages li[data-code="id_sex_mismatch"]')
    expect(warning).to_have_attribute("data-severity", "warning")
    expect(page.locator("#wedge")).to_have_value("")


def test_visit_history_shows_under_the_answer(page: Page) -> None:
    scan(page, "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021")
    expect(page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    box = page.locator("#history")
    expect(box).to_be_visible()
    expect(box).to_have_attribute("data-warn", "true")
    expect(page.locator("#history-note")).to_contain_text("đã có lượt khám hôm nay")
    today = page.locator('#history-list li[data-today="true"]')
    expect(today).to_have_count(1)
    expect(today).to_contain_text("07:45")
    scan(page, CCCD_EXAMPLE)  # the next patient: the previous history is gone at once
    expect(page.locator("#name")).to_have_text("Nguyễn Văn B")
    expect(page.locator('#history-list li[data-today="true"]')).to_have_count(0)


def test_typing_anywhere_goes_to_the_scanner_field(page: Page) -> None:
    page.locator("body").click()
    page.keyboard.type(BHYT_NEW_EXAMPLE)
    page.keyboard.press("Enter")
    expect(page.locator("#name")).to_have_text("Nguyễn Tiến Đạt")
    expect(page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")


def test_result_arrives_live_without_reload(page: Page, daemon: BackgroundServer) -> None:
    # Another client (the HIS, a serial scanner) verifies: the open page updates by itself.
    httpx.post(f"{daemon.url}/api/v1/verify", json={
        "card_code": "HC4010200000005", "full_name": "Vũ Đức Thắng",
        "date_of_birth": "11/11/1970"}, timeout=10)
    expect(page.locator("#status-word")).to_have_text("KHÔNG ĐỦ ĐIỀU KIỆN")
    expect(page.locator("#name")).to_have_text("Vũ Đức Thắng")
    expect(page.locator('#messages li[data-code="registry_010"]')).to_be_visible()


def test_manual_entry_form(page: Page) -> None:
    page.locator("#m-code").fill("CN3010200000001")
    page.locator("#m-name").fill("Trần Thị Hoa")
    page.locator("#m-dob").fill("1965")
    page.locator("#manual-submit").click()
    expect(page.locator("#facts")).to_contain_text("2 — 100%")
    expect(page.locator('#messages li[data-code="benefit_digit_differs"]')).to_be_visible()


def test_bad_qr_shows_what_to_do(page: Page) -> None:
    scan(page, "001098012345||NGUYỄN VĂN B|31022000|Nữ|Hà Nội|01012022")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Vui lòng quét lại")


def test_card_text_is_escaped(page: Page) -> None:
    scan(page, "001098012345||<img src=x onerror=window.pwned=1>|01012000|Nữ|Hà Nội|01012022")
    expect(page.locator("#name")).to_have_text("<img src=x onerror=window.pwned=1>")
    assert page.locator("#result img:not(#photo)").count() == 0
    assert page.evaluate("window.pwned") is None


def test_english_switch(page: Page) -> None:
    scan(page, BHYT_NEW_EXAMPLE)
    expect(page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    page.locator("#lang").click()
    expect(page.locator("#status-word")).to_have_text("ELIGIBLE")
    expect(page.locator("#facts")).to_contain_text("Benefit level")
    expect(page.locator('#messages li[data-code="registry_000"]')).to_have_text(
        "Card data correct.")


def test_registry_health_strip(page: Page) -> None:
    expect(page.locator("#health")).to_have_attribute("data-status", "ok")


def open_page(browser: Browser, server: BackgroundServer) -> Iterator[Page]:
    """The staff page of ``server``, live; the server is stopped afterwards."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    pg.goto(server.url + "/")
    expect(pg.locator("#stream")).to_have_attribute("data-status", "ok")
    yield pg
    context.close()
    server.stop()


@pytest.fixture
def chip_page(browser: Browser, sim: BackgroundServer, tmp_path: Path) -> Iterator[Page]:
    yield from open_page(browser, serve(sim, tmp_path))


def test_demo_chip_shows_photo_and_badge(chip_page: Page) -> None:
    chip_page.locator("#chip-demo").click()
    expect(chip_page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    expect(chip_page.locator("#name")).to_have_text("Nguyễn Tiến Đạt")
    expect(chip_page.locator("#pa-badge")).to_have_text("Chip xác thực")
    expect(chip_page.locator("#pa-badge")).to_have_attribute("data-status", "authentic")
    photo = chip_page.locator("#photo")
    expect(photo).to_be_visible()
    assert chip_page.evaluate("document.getElementById('photo').naturalWidth") > 0


def test_chip_read_uses_the_scanned_cccd_qr(chip_page: Page) -> None:
    scan(chip_page, "001088004321||Nguyễn Tiến Đạt|29031988|Nam|Hà Nội|01072021")
    expect(chip_page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    chip_page.locator("#chip-read").click()
    expect(chip_page.locator("#pa-badge")).to_have_text("Chip xác thực")
    expect(chip_page.locator("#photo")).to_be_visible()


# Every state the page shows: the name, and whose photo is beside it (the ``fp`` of its URL).
WATCH_PHOTO = """
    window.__shown = [];
    new MutationObserver(() => {
      const img = document.getElementById("photo");
      const name = document.getElementById("name");
      if (!img || !name) return;
      const src = img.hidden ? "" : (img.getAttribute("src") || "");
      const fp = src ? new URL(src, location.href).searchParams.get("fp") : "";
      const state = name.textContent + "|" + fp;
      if (window.__shown[window.__shown.length - 1] !== state) window.__shown.push(state);
    }).observe(document, {subtree: true, childList: true, attributes: true,
                          characterData: true});
"""
PHOTO_FP = "new URL(document.getElementById('photo').src).searchParams.get('fp')"


def test_the_photo_goes_with_its_patient(browser: Browser, sim: BackgroundServer,
                                         tmp_path: Path) -> None:
    server, services = serve_with_services(sim, tmp_path)
    assert services.chip is not None
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.add_init_script(WATCH_PHOTO)
        page.goto(server.url + "/")
        expect(page.locator("#stream")).to_have_attribute("data-status", "ok")
        page.locator("#chip-demo").click()  # patient A: name and photo
        expect(page.locator("#name")).to_have_text("Nguyễn Tiến Đạt")
        expect(page.locator("#photo")).to_be_visible()
        a = page.evaluate(PHOTO_FP)
        # Patient B's card leaves the reader after the identity, before the photo.
        services.chip.source = other_card(Faults(torn_after=14))
        with page.expect_response("**/api/v1/chip/demo") as answer:
            page.locator("#chip-demo").click()
        assert answer.value.status == 422
        expect(page.locator("#name")).to_have_text(OTHER_PERSON.full_name)
        expect(page.locator("#photo")).to_be_hidden()  # never A's face beside B's name
        services.chip.source = other_card()  # B again, the whole read: B's own photo
        page.locator("#chip-demo").click()
        expect(page.locator("#pa-badge")).to_have_text("Chip xác thực")
        expect(page.locator("#photo")).to_be_visible()
        b = page.evaluate(PHOTO_FP)
        assert b and b != a
        shown: list[str] = page.evaluate("window.__shown")
        assert f"{OTHER_PERSON.full_name}|{a}" not in shown, shown
        assert f"{OTHER_PERSON.full_name}|{b}" in shown, shown
    finally:
        context.close()
        server.stop()


@pytest.fixture
def offline_page(browser: Browser, sim: BackgroundServer, tmp_path: Path) -> Iterator[Page]:
    yield from open_page(browser, offline_daemon(sim, tmp_path))


def test_offline_answers_are_labelled_and_rechecks_flagged(offline_page: Page,
                                                          sim: BackgroundServer) -> None:
    sim_control(sim, fault="http500")
    offline_page.locator("#m-code").fill("GD4010200000010")
    offline_page.locator("#m-name").fill("Đỗ Văn Lâm")
    offline_page.locator("#m-dob").fill("21/08/1981")
    offline_page.locator("#manual-submit").click()
    expect(offline_page.locator("#offline")).to_contain_text("NGOẠI TUYẾN — dữ liệu lúc")
    expect(offline_page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    sim_control(sim, fault="none")
    banner = offline_page.locator("#recheck")
    expect(banner).to_contain_text("KIỂM TRA LẠI", timeout=15000)
    expect(banner).to_contain_text("Đỗ Văn Lâm")
    expect(banner).to_contain_text("KHÔNG ĐỦ ĐIỀU KIỆN")


# -- a card read through the camera (issue 24, "Trust"): a draft staff confirm with Enter -------
@pytest.fixture
def camera_page(browser: Browser, sim: BackgroundServer, tmp_path: Path) -> Iterator[Page]:
    settings = terminal_settings(sim.url, tmp_path / "data",
                                 camera__source=str(tmp_path / "cam.avi"), camera__fps=30)
    yield from open_page(browser, start_background(create_app(settings,
                                                              daemon_services(settings))))


def test_a_card_read_by_the_camera_fills_the_form_and_enter_confirms(
        camera_page: Page, tmp_path: Path) -> None:
    page = camera_page
    desk = plain_desk()
    write_clip(tmp_path / "tmp.avi", [(desk, 10), (demo_back(), 60), (desk, 45),
                                      (demo_front(), 60), (desk, 10)], fps=30)
    (tmp_path / "tmp.avi").rename(tmp_path / "cam.avi")
    notice = page.locator("#card-notice")
    # The back first: its MRZ opens the chip; the form is not touched.
    expect(notice).to_have_attribute("data-code", "card_mrz_key", timeout=20000)
    expect(notice).to_contain_text("Đặt thẻ lên đầu đọc chip")
    expect(page.locator("#m-code")).to_have_value("")
    # Then the front: every field filled and marked as read from the card, nothing decided.
    expect(notice).to_have_attribute("data-code", "card_text_draft", timeout=20000)
    expect(notice).to_contain_text("nhấn Enter")
    expect(page.locator("#m-code")).to_have_value(DEMO_PERSON.id_number)
    expect(page.locator("#m-name")).to_have_value("NGUYỄN TIẾN ĐẠT")
    expect(page.locator("#m-dob")).to_have_value("29/03/1988")
    for field in ("m-code", "m-name", "m-dob"):
        expect(page.locator(f"#{field}")).to_have_attribute("data-from-card", "true")
        expect(page.locator(f"#{field}-mark")).to_have_text("đọc từ thẻ")
    expect(page.locator("#result")).to_have_attribute("data-status", "empty")
    expect(page.locator("#manual-submit")).to_be_focused()
    switch = "document.getElementById('lang').click()"  # a click that leaves the focus be
    page.evaluate(switch)
    expect(page.locator("#m-name-mark")).to_have_text("read from the card")
    expect(notice).to_contain_text("press Enter")
    page.evaluate(switch)
    expect(notice).to_contain_text("nhấn Enter")
    with page.expect_request("**/api/v1/verify") as sent:
        page.keyboard.press("Enter")  # one key
    assert sent.value.post_data_json == {
        "id_number": DEMO_PERSON.id_number, "full_name": "NGUYỄN TIẾN ĐẠT",
        "date_of_birth": "29/03/1988", "reader": "card_image"}
    expect(page.locator("#status-word")).to_have_text("ĐỦ ĐIỀU KIỆN")
    expect(page.locator("#meta")).to_contain_text("đọc từ thẻ, đã xác nhận")
    expect(page.locator("#m-code-mark")).to_be_hidden()
    expect(notice).to_be_hidden()


def test_a_card_read_while_staff_type_keeps_what_they_typed(
        camera_page: Page, tmp_path: Path) -> None:
    """A card left in the camera's view may be the last patient's: it must not replace a form
    staff are typing. The read waits behind a button; staff choose."""
    page = camera_page
    page.locator("#m-code").fill("GD4010200000010")
    page.locator("#m-name").fill("TRẦN VĂN BA")
    page.locator("#m-name").focus()
    desk = plain_desk()
    write_clip(tmp_path / "tmp.avi", [(desk, 10), (demo_front(), 60), (desk, 10)], fps=30)
    (tmp_path / "tmp.avi").rename(tmp_path / "cam.avi")
    notice, use = page.locator("#card-notice"), page.locator("#card-use")
    expect(notice).to_have_attribute("data-code", "card_kept", timeout=20000)
    expect(notice).to_contain_text("giữ nguyên")
    expect(page.locator("#m-code")).to_have_value("GD4010200000010")
    expect(page.locator("#m-name")).to_have_value("TRẦN VĂN BA")
    expect(page.locator("#m-name")).to_be_focused()  # typing goes on where it was
    expect(page.locator("#m-code-mark")).to_be_hidden()
    expect(use).to_be_visible()
    expect(use).to_have_text("Dùng thông tin từ thẻ")
    use.click()  # staff choose the card: its draft replaces the typing, marked, Enter confirms
    expect(page.locator("#m-code")).to_have_value(DEMO_PERSON.id_number)
    expect(page.locator("#m-name")).to_have_value("NGUYỄN TIẾN ĐẠT")
    expect(page.locator("#m-code")).to_have_attribute("data-from-card", "true")
    expect(notice).to_have_attribute("data-code", "card_text_draft")
    expect(use).to_be_hidden()
    expect(page.locator("#manual-submit")).to_be_focused()
