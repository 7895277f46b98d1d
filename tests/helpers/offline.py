"""A daemon in process that answers from a signed snapshot when the registry does not: the
offline policy's test bed, and the patients it knows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from terminal.app import create_app
from terminal.server import BackgroundServer, start_background
from tests.helpers.cache import READING, Publisher
from tests.helpers.daemon import daemon_services, terminal_settings
from tests.helpers.samples import NOW, TODAY
from verify.adapters.cache import install
from verify.simulator.registry_sim import seed_records
from verify.snapshot import CSV_COLUMNS, public_key_text, records_from_csv

SON = {"card_code": "HT3790200000003", "full_name": "Phạm Văn Sơn", "date_of_birth": "02/02/1950"}
LAM = {"card_code": "GD4010200000010", "full_name": "Đỗ Văn Lâm", "date_of_birth": "21/08/1981"}


def snapshot_rows() -> list[dict[str, Any]]:
    lines = [",".join(CSV_COLUMNS) + "\n"]
    for r in seed_records(TODAY):
        lines.append(",".join(str(r.get(c, "")) for c in CSV_COLUMNS) + "\n")
    return list(records_from_csv(lines))


def offline_daemon(sim: BackgroundServer, tmp_path: Path, *, created_days_ago: float = 1,
                   expires_days: float = 7, his: dict[str, Any] | None = None,
                   **cache: Any) -> BackgroundServer:
    pub = Publisher()
    data = tmp_path / "data"
    src = pub.build(tmp_path / "snap", rows=snapshot_rows(),
                    created=NOW - timedelta(days=created_days_ago), days=expires_days)
    install(src, data / "cache", pub.trusted)
    reading = tmp_path / "reading.key"
    reading.write_text(READING.hex())
    trusted = f"{pub.key_id}:{public_key_text(pub.trusted[pub.key_id])}"
    values = {"trusted_keys": [trusted], "reading_key_file": str(reading),
              "budget_seconds": 1.0, "breaker_failures": 2, "breaker_cooldown_seconds": 0.5,
              **cache}
    settings = terminal_settings(sim.url, data, **{f"cache__{k}": v for k, v in values.items()},
                                 **{f"his__{k}": v for k, v in (his or {}).items()})
    services = daemon_services(settings)
    services.probe_seconds = 0.2
    return start_background(create_app(settings, services))
