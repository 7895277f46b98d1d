"""``tiepdon card probe``'s report (terminal/chip/probe.py): what an interop report needs,
no personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from readers.doubles.vcard import DEMO_PERSON, DemoSource, Faults, demo_card, make_pki
from readers.emrtd.pa import load_trust
from readers.emrtd.secinfo import summarize
from terminal.chip.probe import probe

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _report(faults: Faults | None = None) -> dict[str, object]:
    pki = make_pki(now=NOW)
    card = demo_card(now=NOW, pki=pki, faults=faults or Faults())[0]
    source = DemoSource(card)
    keys = source.demo_keys
    assert keys is not None
    return probe(source, keys, trust=load_trust([pki.csca_pem()]), now=NOW)


def test_the_probe_reports_the_card_without_personal_data() -> None:
    report = _report(Faults(aa="ec"))
    assert report["access"] == "pace" and report["extended_length"] is True
    assert report["card_access"] == [{"protocol": "0.4.0.127.0.7.2.2.4.2.2",
                                      "fields": [{"integer": 2}, {"integer": 13}]}]
    dg14 = report["dg14"]
    assert isinstance(dg14, list)
    assert {"public_key": "1.2.840.10045.2.1",
            "parameters": "named_curve 1.3.36.3.3.2.8.1.1.7"} in dg14[0]["fields"]
    sod = report["sod"]
    assert isinstance(sod, dict)
    assert sod["data_groups"] == [1, 2, 13, 14, 15] and sod["hash_algorithm"] == "sha256"
    assert "CSCA" in sod["ds_issuer"]
    checks = report["checks"]
    assert isinstance(checks, dict)
    assert checks["passive_auth"]["status"] == "authentic"
    assert (checks["chip_auth"], checks["active_auth"]) == ("passed", "passed")
    steps = report["steps"]
    assert isinstance(steps, dict)
    assert {"card_access", "pace", "read_files", "chip_auth", "active_auth"} <= set(steps)
    assert report["apdus"] == sum(s["apdus"] for s in steps.values())
    text = json.dumps(report, ensure_ascii=False)
    p = DEMO_PERSON
    for secret in (p.id_number, p.id_number[-9:], p.full_name, "880329", "29031988",
                   p.full_name.split()[-1]):
        assert secret not in text, secret


def test_a_failed_step_is_named_not_raised() -> None:
    report = _report(Faults(ca="clone"))
    checks = report["checks"]
    assert isinstance(checks, dict) and checks["chip_auth"] == "failed"


def test_security_infos_that_do_not_parse_are_reported_not_raised() -> None:
    assert summarize(None) == "absent"
    assert str(summarize(b"\x31\x05\x30\x03\x06")).startswith("unreadable")
    assert summarize(b"\x04\x00") == "not a SET OF SecurityInfo"
