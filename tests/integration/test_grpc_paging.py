"""Paged lists over gRPC against a real one-master `skiff up` cluster: ApiClient.list_pages, list
(which pages too), `skiff get --chunk-size`, and what the servicer refuses."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from orchestrator import client as client_module
from orchestrator import errors
from skiffpb import api_pb2 as api
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration

COUNT = 25
SELECTOR = "paging=yes"
NAMES = sorted(f"page-{i:02d}" for i in range(COUNT))


def cm(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"paging": "yes"}},
        "data": {"k": "v"},
    }


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Callable[..., Cluster]) -> Cluster:
    """One master holding the 25 ConfigMaps the tests list (and only read)."""
    c = module_cluster_factory(masters=1, workers=0, lb=False)

    async def create_all() -> None:
        async with c.client() as api_client:
            await asyncio.gather(*(api_client.create(cm(n)) for n in NAMES))

    asyncio.run(create_all())
    return c


def names_of(objs: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


async def test_list_pages_returns_each_item_once_in_pages_of_the_limit(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with cluster.client() as c:
        pages = [p async for p in c.list_pages("ConfigMap", "default", SELECTOR, limit=10)]
        assert [len(p) for p in pages] == [10, 10, 5]
        assert [n for p in pages for n in names_of(p)] == NAMES

        one = [p async for p in c.list_pages("ConfigMap", "default", SELECTOR, limit=0)]
        assert [names_of(p) for p in one] == [NAMES]

        items, rv = await c.list("ConfigMap", "default", SELECTOR)
        assert names_of(items) == NAMES and int(rv) > 0
        # list() follows the pages itself (one call each), and answers the first page's revision.
        monkeypatch.setattr(client_module, "LIST_PAGE", 10)
        calls: list[api.ListRequest] = []
        call = c._call

        async def counted(method: str, request: Any) -> Any:
            calls.append(request)
            return await call(method, request)

        monkeypatch.setattr(c, "_call", counted)
        paged, paged_rv = await c.list("ConfigMap", "default", SELECTOR)
        assert names_of(paged) == NAMES and int(paged_rv) >= int(rv)
        assert [(r.limit, bool(r.continue_token)) for r in calls] == [(10, False), (10, True), (10, True)]


async def test_the_servicer_refuses_a_negative_limit_and_a_foreign_token(cluster: Cluster) -> None:
    async with cluster.client() as c:
        stub = c.stub()
        meta = (("authorization", f"Bearer {cluster.token()}"),)
        with pytest.raises(grpc.aio.AioRpcError) as negative:
            await stub.List(api.ListRequest(kind="ConfigMap", limit=-1), metadata=meta, timeout=5)
        assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert negative.value.details() == "limit: -1 must not be negative (0 = no limit)"

        forged = base64.urlsafe_b64encode(b"not json").decode()
        with pytest.raises(errors.Invalid, match="is not a continue token this server issued"):
            await c._call("List", api.ListRequest(kind="ConfigMap", limit=5, continue_token=forged))


def test_skiff_get_with_a_chunk_size_prints_what_one_list_prints(cluster: Cluster) -> None:
    paged = cluster.skiff("get", "configmaps", "-l", SELECTOR, "--chunk-size", "10", check=True).stdout
    whole = cluster.skiff("get", "configmaps", "-l", SELECTOR, "--chunk-size", "0", check=True).stdout
    default = cluster.skiff("get", "configmaps", "-l", SELECTOR, check=True).stdout

    def without_age(table: str) -> list[list[str]]:
        return [line.split()[:2] for line in table.splitlines()]  # AGE may tick between the runs

    assert without_age(paged) == [["NAME", "DATA"]] + [[n, "1"] for n in NAMES]
    assert without_age(paged) == without_age(whole) == without_age(default)

    as_names = cluster.skiff("get", "cm", "-l", SELECTOR, "--chunk-size", "7", "-o", "name", check=True)
    assert as_names.stdout.splitlines() == [f"configmap/{n}" for n in NAMES]

    refused = cluster.skiff("get", "cm", "--chunk-size", "-1")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "--chunk-size: -1 must not be negative" in refused.stderr and refused.stderr.count("\n") == 1
