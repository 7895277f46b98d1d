"""The shipped data tables: dated benefit rules, staff messages, provinces."""

from __future__ import annotations

from datetime import date

import pytest

from terminal.resources import shipped_tables_dir
from tests.helpers.samples import DOMAIN_CODES
from verify.errors import TableError
from verify.tables import Status, Tables, parse_benefit_rules, parse_messages, parse_tables


@pytest.mark.parametrize(("code", "on", "level", "percent"), [
    ("CC", date(2025, 6, 1), 1, 100),
    ("TE", date(2026, 6, 1), 1, 100),
    ("DT", date(2026, 6, 1), 2, 100),
    ("HT", date(2026, 6, 1), 3, 95),
    ("DN", date(2026, 6, 1), 4, 80),
    ("QN", date(2026, 6, 1), 5, 100),
    # The 2026-01-01 override (Công văn 38/BYT-BH): CN 3 → 2, LH 4 → 2.
    ("CN", date(2025, 12, 31), 3, 95),
    ("CN", date(2026, 1, 1), 2, 100),
    ("LH", date(2025, 12, 31), 4, 80),
    ("LH", date(2026, 1, 1), 2, 100),
])
def test_level_by_object_code_and_day(tables: Tables, code: str, on: date, level: int,
                                      percent: int) -> None:
    applied = tables.rules.level_for(code, on)
    assert applied is not None
    assert (applied.benefit.level, applied.benefit.percent) == (level, percent)


@pytest.mark.parametrize("code", ["AK", "TG", "BA", "ZZ"])
def test_unknown_object_codes_have_no_level(tables: Tables, code: str) -> None:
    assert tables.rules.level_for(code, date(2026, 6, 1)) is None


def test_base_salary_is_dated(tables: Tables) -> None:
    assert tables.rules.base_salary_on(date(2024, 6, 30)) == 1_800_000
    assert tables.rules.base_salary_on(date(2024, 7, 1)) == 2_340_000
    assert tables.rules.base_salary_on(date(2020, 1, 1)) is None


@pytest.mark.parametrize("code", DOMAIN_CODES)
def test_every_domain_code_has_a_decision_and_both_languages(tables: Tables, code: str) -> None:
    entry = tables.registry_codes[code]
    assert entry.vi.strip() and entry.en.strip()
    assert entry.vi != entry.en


def test_only_data_codes_lead_to_eligible(tables: Tables) -> None:
    eligible = {c for c, e in tables.registry_codes.items() if e.status is Status.ELIGIBLE}
    assert eligible == {"000", "003", "004"}


def test_province_table_has_the_63_provinces(tables: Tables) -> None:
    assert len(tables.provinces) == 63
    assert tables.provinces["79"] == "TP Hồ Chí Minh"


def _texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in shipped_tables_dir().glob("*.toml")}


@pytest.mark.parametrize(("bad", "needle"), [
    ("format = 2\n", "format"),
    ("format = 1\n[levels.7]\npercent = 1\ncapped = true\nvi = 'x'\nen = 'x'\n", "1–5"),
    ("format = 1\n[levels.1]\npercent = 120\ncapped = true\nvi = 'x'\nen = 'x'\n", "percent"),
    ("format = 1\n[levels.1]\npercent = 100\ncapped = true\nvi = 'x'\nen = 'x'\n"
     "[[rule]]\neffective_from = 2020-01-01\nlevel = 3\ncodes = ['DN']\nsource = 's'\n",
     "level 3 is not defined"),
    ("format = 1\n[levels.1]\npercent = 100\ncapped = true\nvi = 'x'\nen = 'x'\n"
     "[[rule]]\neffective_from = 2020-01-01\nlevel = 1\ncodes = ['DN', 'DN']\nsource = 's'\n",
     "listed twice"),
    ("format = 1\n[levels.1]\npercent = 100\ncapped = true\nvi = 'x'\nen = 'x'\n"
     "[[rule]]\neffective_from = '2020-01-01'\nlevel = 1\ncodes = ['DN']\nsource = 's'\n",
     "effective_from"),
    ("format = [", "not valid TOML"),
])
def test_broken_benefit_table_is_refused(bad: str, needle: str) -> None:
    with pytest.raises(TableError, match=needle):
        parse_benefit_rules(bad)


@pytest.mark.parametrize(("bad", "needle"), [
    ("format = 1\n[registry.'00']\nstatus = 'eligible'\nvi = 'x'\nen = 'y'\n[notice]\n",
     "3 digits"),
    ("format = 1\n[registry.'000']\nstatus = 'maybe'\nvi = 'x'\nen = 'y'\n[notice]\n",
     "unknown status"),
    ("format = 1\n[registry.'000']\nstatus = 'eligible'\nvi = 'x'\n[notice]\n", "'en'"),
])
def test_broken_message_table_is_refused(bad: str, needle: str) -> None:
    with pytest.raises(TableError, match=needle):
        parse_messages(bad)


def test_shipped_tables_parse() -> None:
    t = parse_tables(_texts())
    assert set(DOMAIN_CODES) <= set(t.registry_codes)
