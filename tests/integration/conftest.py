"""Shared fixtures for integration tests: clusters started with `skiff up`, always reaped.

- `cluster_factory(**kw)` (per test) and `module_cluster_factory(**kw)` (per module) start a
  tests.integration.cluster.Cluster (kw: masters, workers, lb, up_args, timeout) in a tmp state dir.
- Every cluster is stopped with `skiff down` and its recorded process groups are SIGKILLed, also
  when the test fails; on failure each process's log tail is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.cluster import Cluster  # noqa: E402

_failed: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        _failed.add(item.nodeid)


def _factory(tmp: Path, failed: Callable[[], bool]) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def make(**kw: Any) -> Cluster:
        c = Cluster(tmp / f"cluster{len(clusters)}", **kw)
        clusters.append(c)
        return c.up()

    try:
        yield make
    finally:
        for c in clusters:
            if failed() or (c.up_result is not None and c.up_result.returncode != 0):
                print(f"\n---- logs of the cluster in {c.state_dir} ----\n{c.log_tails()}", file=sys.stderr)
            c.down()


@pytest.fixture
def cluster_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    yield from _factory(tmp_path, lambda: request.node.nodeid in _failed)


@pytest.fixture(scope="module")
def module_cluster_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Cluster]]:
    prefix = request.node.nodeid
    tmp = tmp_path_factory.mktemp(Path(request.node.name).stem)
    yield from _factory(tmp, lambda: any(n.startswith(prefix) for n in _failed))
