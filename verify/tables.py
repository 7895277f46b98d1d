"""The shipped data tables (``config/*.toml``) as validated values: benefit rules by date,
staff messages for registry codes and terminal notices, province names.

Pure: callers pass the TOML text; ``terminal`` reads the files. A table that does not validate
raises :class:`TableError` naming the entry, so a bad edit stops start-up instead of guessing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from verify.errors import TableError
from verify.model import is_digits

TABLE_FILES = ("benefit_rules.toml", "messages.toml", "provinces.toml")


class Status(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    NEEDS_REVIEW = "needs_review"


class Severity(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BenefitLevel:
    level: int
    percent: int
    capped: bool
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class ObjectRule:
    effective_from: date
    level: int
    codes: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class AppliedLevel:
    """The level in force for one object code on one day, and the rule that set it."""

    benefit: BenefitLevel
    rule: ObjectRule


@dataclass(frozen=True, slots=True)
class BenefitRules:
    levels: dict[int, BenefitLevel]
    rules: tuple[ObjectRule, ...]
    base_salary: tuple[tuple[date, int], ...]
    small_visit_percent: int
    small_visit_levels: frozenset[int]

    def level_for(self, object_code: str, on: date) -> AppliedLevel | None:
        """The row with the latest ``effective_from`` ≤ ``on`` listing the code, or None."""
        best: ObjectRule | None = None
        for rule in self.rules:
            if object_code in rule.codes and rule.effective_from <= on and (
                best is None or rule.effective_from > best.effective_from
            ):
                best = rule
        return None if best is None else AppliedLevel(self.levels[best.level], best)

    def base_salary_on(self, on: date) -> int | None:
        amounts = [amount for since, amount in self.base_salary if since <= on]
        return amounts[-1] if amounts else None


@dataclass(frozen=True, slots=True)
class CodeEntry:
    status: Status
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class Notice:
    severity: Severity
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class Tables:
    rules: BenefitRules
    registry_codes: dict[str, CodeEntry]
    notices: dict[str, Notice]
    provinces: dict[str, str]


def _load(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TableError(f"{name}: not valid TOML ({e})") from e


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise TableError(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TableError(f"{where}: '{key}' has the wrong type")
    return value


def parse_benefit_rules(text: str) -> BenefitRules:
    doc = _load(text, "benefit_rules.toml")
    if doc.get("format") != 1:
        raise TableError("benefit_rules.toml: unsupported 'format'")
    levels: dict[int, BenefitLevel] = {}
    for key, row in _get(doc, "levels", dict, "benefit_rules.toml").items():
        where = f"benefit_rules.toml levels.{key}"
        if not is_digits(key) or not 1 <= int(key) <= 5:
            raise TableError(f"{where}: level must be 1–5")
        percent = _get(row, "percent", int, where)
        if not 0 <= percent <= 100:
            raise TableError(f"{where}: percent out of range")
        levels[int(key)] = BenefitLevel(
            int(key), percent, _get(row, "capped", bool, where),
            _get(row, "vi", str, where), _get(row, "en", str, where),
        )
    rules: list[ObjectRule] = []
    seen: set[tuple[str, date]] = set()
    for i, row in enumerate(_get(doc, "rule", list, "benefit_rules.toml")):
        where = f"benefit_rules.toml rule #{i + 1}"
        since = _get(row, "effective_from", date, where)
        level = _get(row, "level", int, where)
        if level not in levels:
            raise TableError(f"{where}: level {level} is not defined")
        codes = _get(row, "codes", list, where)
        for code in codes:
            if not isinstance(code, str) or len(code) != 2 or not code.isalpha():
                raise TableError(f"{where}: object codes are two letters")
            if (code, since) in seen:
                raise TableError(f"{where}: {code} listed twice for {since}")
            seen.add((code, since))
        rules.append(ObjectRule(since, level, frozenset(codes), _get(row, "source", str, where)))
    salaries = sorted(
        (_get(row, "effective_from", date, "base_salary"), _get(row, "amount", int, "base_salary"))
        for row in doc.get("base_salary", [])
    )
    return BenefitRules(
        levels=levels,
        rules=tuple(rules),
        base_salary=tuple(salaries),
        small_visit_percent=int(doc.get("small_visit_percent_of_base_salary", 0)),
        small_visit_levels=frozenset(doc.get("small_visit_levels", [])),
    )


def parse_messages(text: str) -> tuple[dict[str, CodeEntry], dict[str, Notice]]:
    doc = _load(text, "messages.toml")
    if doc.get("format") != 1:
        raise TableError("messages.toml: unsupported 'format'")
    codes: dict[str, CodeEntry] = {}
    for code, row in _get(doc, "registry", dict, "messages.toml").items():
        where = f"messages.toml registry.{code}"
        if len(code) != 3 or not is_digits(code):
            raise TableError(f"{where}: registry codes are 3 digits")
        try:
            status = Status(_get(row, "status", str, where))
        except ValueError as e:
            raise TableError(f"{where}: unknown status") from e
        codes[code] = CodeEntry(status, _get(row, "vi", str, where), _get(row, "en", str, where))
    notices: dict[str, Notice] = {}
    for name, row in _get(doc, "notice", dict, "messages.toml").items():
        where = f"messages.toml notice.{name}"
        try:
            severity = Severity(_get(row, "severity", str, where))
        except ValueError as e:
            raise TableError(f"{where}: unknown severity") from e
        notices[name] = Notice(severity, _get(row, "vi", str, where), _get(row, "en", str, where))
    return codes, notices


def parse_provinces(text: str) -> dict[str, str]:
    doc = _load(text, "provinces.toml")
    provinces = _get(doc, "provinces", dict, "provinces.toml")
    for code, name in provinces.items():
        if len(code) != 2 or not is_digits(code) or not isinstance(name, str):
            raise TableError(f"provinces.toml: bad entry {code!r}")
    return dict(provinces)


def parse_tables(texts: dict[str, str]) -> Tables:
    """``texts`` maps each name in :data:`TABLE_FILES` to that file's content."""
    codes, notices = parse_messages(texts["messages.toml"])
    return Tables(
        rules=parse_benefit_rules(texts["benefit_rules.toml"]),
        registry_codes=codes,
        notices=notices,
        provinces=parse_provinces(texts["provinces.toml"]),
    )
