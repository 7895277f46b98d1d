"""Reading an e-card on a phone screen when its QR does not read (VssID's BHYT card, VNeID's
e-ID): the screen titles, each app's screen read from a rendered frame, phone screens with no
card, a number failing its structure, ``tiepdon image read`` on a saved screen."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import cv2
import pytest

from readers.devices.camera.screen import find_panels
from readers.devices.ocr import Tesseract
from readers.doubles.cards import person
from readers.doubles.screens import screen_frame, vssid_number
from readers.ocr.layouts import CardModel
from readers.ocr.read import match_title
from readers.ocr.screen import match_screen_title
from terminal.flow.cardimage import CardImageReader
from tests.helpers.cards import TODAY, clean, degraded, tables
from tests.helpers.cli import run
from verify.model import CredentialKind


@pytest.fixture(scope="module")
def reader() -> CardImageReader:
    return CardImageReader(tables(), engine=Tesseract())


@pytest.mark.parametrize(("title", "model"), [
    ("BẢO HIỂM XÃ HỘI VIỆT NAM\nTHẺ BẢO HIỂM Y TẾ", CardModel.VSSID_BHYT),
    ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nCĂN CƯỚC ĐIỆN TỬ", CardModel.VNEID_CCCD),
    ("CĂN CƯỚC CÔNG DÂN", CardModel.VNEID_CCCD),
    ("Zalo VssID VNeID Camera", None), ("", None)])
def test_screen_titles_choose_among_the_screen_models(title: str, model: CardModel | None
                                                      ) -> None:
    layout = match_screen_title(title)
    assert (layout.model if layout else None) == model


def test_printed_titles_never_choose_a_screen_model() -> None:
    layout = match_title("BẢO HIỂM XÃ HỘI VIỆT NAM\nTHẺ BẢO HIỂM Y TẾ")
    assert layout is not None and layout.model is CardModel.BHYT


@pytest.mark.parametrize("kind", ["vssid", "vneid"])
@pytest.mark.parametrize("seed", [7, 8])
def test_each_app_screen_is_read(reader: CardImageReader, kind: str, seed: int) -> None:
    s = clean(kind, seed)
    p = s.person
    assert p is not None
    assert find_panels(s.frame)
    c = reader.read_frame(s.frame, today=TODAY)
    assert c is not None and c.read_from == "text"
    if kind == "vssid":
        assert c.kind is CredentialKind.BHYT_TEXT and c.card_code == vssid_number(p)
    else:
        assert c.kind is CredentialKind.CCCD_TEXT and c.id_number == p.id_number
    assert c.date_of_birth is not None and c.date_of_birth.exact == p.date_of_birth
    assert c.full_name == p.full_name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_phone_showing_no_card_reads_nothing(reader: CardImageReader, seed: int) -> None:
    assert reader.read_frame(degraded("phone_screen", seed).frame, today=TODAY) is None
    assert reader.read_frame(clean("phone_screen", seed).frame, today=TODAY) is None


@pytest.mark.parametrize("landscape", [True, False])
def test_a_number_failing_its_structure_is_dropped(reader: CardImageReader,
                                                   landscape: bool) -> None:
    rnd = random.Random(f"unit:tampered:{landscape}")
    p = person(rnd)
    # Province 099 does not exist (DOMAIN.md §2); a BHXH number's first two digits are one.
    vneid = replace(p, id_number="099" + p.id_number[3:])
    c = reader.read_frame(screen_frame("vneid", vneid, rnd, landscape=landscape)[0],
                          today=TODAY)
    assert c is not None and c.id_number is None and c.full_name == p.full_name
    vssid = replace(p, bhxh="99" + p.bhxh[2:])
    if len(vssid_number(vssid)) == 15:
        vssid = replace(vssid, bhxh=vssid.bhxh[:-1] + "1")
    c = reader.read_frame(screen_frame("vssid", vssid, rnd, landscape=landscape)[0],
                          today=TODAY)
    assert c is not None and c.card_code is None and c.full_name == p.full_name


def test_image_read_command_reads_a_screen(tmp_path: Path) -> None:
    files = {}
    for kind in ("vssid", "vneid"):
        s = clean(kind)
        files[kind] = (tmp_path / f"{kind}.png", s.person)
        cv2.imwrite(str(files[kind][0]), s.frame)
    out = run("image", "read", *(str(f) for f, _ in files.values()))
    assert out.returncode == 0, out.stderr
    vssid, vneid = (json.loads(line) for line in out.stdout.splitlines())
    (b,), (c,) = vssid["credentials"], vneid["credentials"]
    pb, pc = files["vssid"][1], files["vneid"][1]
    assert pb is not None and pc is not None
    assert (b["kind"], b["read_from"], b["card_code"], b["date_of_birth"]) == (
        "bhyt_text", "text", vssid_number(pb), pb.date_of_birth.isoformat())
    assert (c["kind"], c["read_from"], c["id_number"], c["date_of_birth"]) == (
        "cccd_text", "text", pc.id_number, pc.date_of_birth.isoformat())
