"""A snapshot publisher with its own signing key, the reading key and a three-row CSV: what the
cache, offline and hostile-input tests build signed snapshots from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verify.adapters.cache import build
from verify.snapshot import CSV_COLUMNS, records_from_csv

NOW = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)
READING = bytes(range(32))
CSV = ",".join(CSV_COLUMNS) + "\n" + """\
GD4010111077012,,001088004321,Nguyễn Tiến Đạt,29/03/1988,Nam,2026-01-01,2026-12-31,01C54,,01/10/2027
DN479GA78900007,,,Đoàn Phương Nhi,15/09/1993,Nữ,01/01/2026,31/12/2026,79012,K2,
CN3010200000001,0200000001,,Trần Thị Hoa,1965,2,2026-01-01,2026-12-31,01C54,,
"""


def records() -> list[dict[str, object]]:
    return list(records_from_csv(CSV.splitlines(keepends=True)))


class Publisher:
    def __init__(self, key_id: str = "pub-2026a") -> None:
        self.key_id = key_id
        self.key = Ed25519PrivateKey.generate()

    @property
    def trusted(self) -> dict[str, Ed25519PublicKey]:
        return {self.key_id: self.key.public_key()}

    def build(self, out: Path, version: int = 1, rows: list[dict[str, object]] | None = None,
              created: datetime = NOW, days: float = 7, facility: str | None = None) -> Path:
        build(rows if rows is not None else records(), out, signing_key=self.key,
              key_id=self.key_id, reading_key=READING, version=version, created=created,
              expires=created + timedelta(days=days), facility=facility)
        return out
