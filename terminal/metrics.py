"""Counters for ``GET /metrics`` in the Prometheus text format (no personal data, ever)."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Registry latency buckets (seconds): the gateway answers in seconds, sometimes tens.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Labelled:
    """A live family of samples told apart by one label (``reason="key_changed"`` → 3), for
    the values ``Metrics.gauges`` returns beside plain numbers; ``kind`` is its TYPE."""

    label: str
    values: Mapping[str, float]
    kind: str = "counter"


class Metrics:
    def __init__(self) -> None:
        self.verifications: Counter[tuple[str, str, str]] = Counter()  # status, source, code
        self.input_errors: Counter[str] = Counter()                     # error code
        self.amended: Counter[tuple[str, str]] = Counter()              # from status, to status
        self.chip_checks: Counter[tuple[str, str]] = Counter()          # AA/CA, outcome
        self.registry_buckets = [0] * (len(BUCKETS) + 1)
        self.registry_seconds_sum = 0.0
        self.registry_seconds_count = 0
        # filled in at render time from the live objects (breaker, readers)
        self.gauges: Callable[[], dict[str, Any]] = dict

    def observe_registry(self, seconds: float) -> None:
        self.registry_buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.registry_seconds_sum += seconds
        self.registry_seconds_count += 1

    def render(self) -> str:
        out = ["# HELP tiepdon_verifications_total Decisions by status, source and registry code.",
               "# TYPE tiepdon_verifications_total counter"]
        for (status, source, code), n in sorted(self.verifications.items()):
            out.append(f'tiepdon_verifications_total{{status="{status}",source="{source}",'
                       f'registry_code="{code}"}} {n}')
        out += ["# HELP tiepdon_decisions_amended_total Decisions revisited at the end of a chip "
                "read (counted once in tiepdon_verifications_total, as first made).",
                "# TYPE tiepdon_decisions_amended_total counter"]
        for (before, after), n in sorted(self.amended.items()):
            out.append(f'tiepdon_decisions_amended_total{{from="{before}",to="{after}"}} {n}')
        out += ["# HELP tiepdon_chip_checks_total Active (AA) and Chip (CA) Authentication "
                "outcomes of finished chip reads; not_verified: the chip offers the check and "
                "this terminal could not run it (an encoding or curve it does not support).",
                "# TYPE tiepdon_chip_checks_total counter"]
        for (check, result), n in sorted(self.chip_checks.items()):
            out.append(f'tiepdon_chip_checks_total{{check="{check}",result="{result}"}} {n}')
        out += ["# HELP tiepdon_input_errors_total Refused inputs and reader errors, by code.",
                "# TYPE tiepdon_input_errors_total counter"]
        for code, n in sorted(self.input_errors.items()):
            out.append(f'tiepdon_input_errors_total{{code="{code}"}} {n}')
        out += ["# HELP tiepdon_registry_seconds Time spent waiting for registry lookups.",
                "# TYPE tiepdon_registry_seconds histogram"]
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), self.registry_buckets, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'tiepdon_registry_seconds_bucket{{le="{le}"}} {running}')
        out += [f"tiepdon_registry_seconds_sum {self.registry_seconds_sum:.6f}",
                f"tiepdon_registry_seconds_count {self.registry_seconds_count}"]
        for name, (help_text, value) in sorted(self.gauges().items()):
            if isinstance(value, Labelled):
                out += [f"# HELP tiepdon_{name} {help_text}",
                        f"# TYPE tiepdon_{name} {value.kind}"]
                out += [f'tiepdon_{name}{{{value.label}="{key}"}} {n}'
                        for key, n in sorted(value.values.items())]
                continue
            out += [f"# HELP tiepdon_{name} {help_text}", f"# TYPE tiepdon_{name} gauge",
                    f"tiepdon_{name} {value}"]
        return "\n".join(out) + "\n"
