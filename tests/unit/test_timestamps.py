"""Kubernetes' timestamps: `model.rfc3339` caches each second's text; what it gives is what datetime
formats, also a hair before a second boundary, where datetime rounds the microseconds up."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from orchestrator import model


def formatted(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "t", [0, 1.5, 1764800000, 1764800000.123, 1764800000.9994, 1764800000.9999996, 1764800000.99999949, -1.5]
)
def test_rfc3339_is_datetimes_form(t: float) -> None:
    assert model.rfc3339(t) == formatted(t)


def test_rfc3339_agrees_with_datetime_on_random_times() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        t = rng.uniform(0, 4e9)
        assert model.rfc3339(t) == formatted(t)
    assert model.rfc3339(1764800000.2) == "2025-12-03T22:13:20Z"
