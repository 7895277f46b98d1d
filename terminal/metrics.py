"""Counters for ``GET /metrics`` in the Prometheus text format (no personal data, ever)."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.verifications: Counter[tuple[str, str]] = Counter()   # (status, source)
        self.input_errors: Counter[str] = Counter()                 # error code
        self.registry_seconds_sum = 0.0
        self.registry_seconds_count = 0

    def render(self) -> str:
        lines = [
            "# HELP tiepdon_verifications_total Eligibility decisions by status and source.",
            "# TYPE tiepdon_verifications_total counter",
        ]
        for (status, source), n in sorted(self.verifications.items()):
            lines.append(f'tiepdon_verifications_total{{status="{status}",source="{source}"}} {n}')
        lines += [
            "# HELP tiepdon_input_errors_total Presented data refused, by error code.",
            "# TYPE tiepdon_input_errors_total counter",
        ]
        for code, n in sorted(self.input_errors.items()):
            lines.append(f'tiepdon_input_errors_total{{code="{code}"}} {n}')
        lines += [
            "# HELP tiepdon_registry_seconds Time spent waiting for registry lookups.",
            "# TYPE tiepdon_registry_seconds summary",
            f"tiepdon_registry_seconds_sum {self.registry_seconds_sum:.6f}",
            f"tiepdon_registry_seconds_count {self.registry_seconds_count}",
        ]
        return "\n".join(lines) + "\n"
