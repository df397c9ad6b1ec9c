"""Prometheus text-format metrics: per-backend counters of one worker, and the supervisor's sum.

Each worker counts in plain integer slots (no locks, one thread) and renders them on request; the
supervisor fetches every worker's text and adds samples with equal name and labels (`aggregate`), so
one scrape of --metrics-port sees the whole balancer. A restarted worker starts from zero, which a
scraper sees as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable


class BackendStats:
    """Counters of one backend in one worker. Byte counts of open connections are added at scrape."""

    __slots__ = (
        "connections_total",
        "active",
        "bytes_in",
        "bytes_out",
        "connect_errors",
        "retries",
        "no_endpoint",
    )

    def __init__(self) -> None:
        self.connections_total = 0
        self.active = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.connect_errors = 0
        self.retries = 0
        self.no_endpoint = 0


# name, type, help, BackendStats attribute
BACKEND_METRICS = (
    ("skiff_lb_connections_total", "counter", "Connections proxied to a backend", "connections_total"),
    ("skiff_lb_connections_active", "gauge", "Open proxied connections", "active"),
    ("skiff_lb_bytes_in_total", "counter", "Bytes from clients to the backend", "bytes_in"),
    ("skiff_lb_bytes_out_total", "counter", "Bytes from the backend to clients", "bytes_out"),
    ("skiff_lb_connect_errors_total", "counter", "Failed connects to endpoints", "connect_errors"),
    ("skiff_lb_retries_total", "counter", "Connects retried on another endpoint", "retries"),
    (
        "skiff_lb_no_endpoint_total",
        "counter",
        "Connections refused for want of a usable endpoint",
        "no_endpoint",
    ),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    backends: dict[str, tuple[int, ...]],
    gauges: Iterable[tuple[str, str, float]] = (),
) -> str:
    """Text exposition: `backends` maps a backend name to values in BACKEND_METRICS order;
    `gauges` are (name, help, value) without labels."""
    out: list[str] = []
    for i, (name, kind, help_, _) in enumerate(BACKEND_METRICS):
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for backend in sorted(backends):
            out.append(f'{name}{{backend="{_escape(backend)}"}} {backends[backend][i]}')
    for name, help_, value in gauges:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} gauge")
        out.append(f"{name} {value:g}")
    return "\n".join(out) + "\n"


def aggregate(texts: Iterable[str]) -> str:
    """Sum samples with equal name and labels over several expositions; keep HELP/TYPE once."""
    meta: dict[str, list[str]] = {}
    order: list[str] = []
    sums: dict[str, dict[str, float]] = {}
    for text in texts:
        family = ""
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3:
                    family = parts[2]
                    if family not in meta:
                        meta[family] = []
                        order.append(family)
                        sums[family] = {}
                    if line not in meta[family]:
                        meta[family].append(line)
                continue
            series, _, value = line.rpartition(" ")
            base = series.split("{", 1)[0]
            fam = family if base.startswith(family) and family else base
            if fam not in meta:
                meta[fam] = []
                order.append(fam)
                sums[fam] = {}
            try:
                v = float(value)
            except ValueError:
                continue
            sums[fam][series] = sums[fam].get(series, 0.0) + v
    out: list[str] = []
    for fam in order:
        out.extend(meta[fam])
        for series in sorted(sums[fam]):
            out.append(f"{series} {sums[fam][series]:.17g}")
    return "\n".join(out) + "\n"


def parse(text: str) -> dict[str, float]:
    """series ('name{labels}') -> value; for tests and the benchmark."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out
