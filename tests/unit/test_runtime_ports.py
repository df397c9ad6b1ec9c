"""Host ports for container ports: never one the node's other pods hold, never one twice in a pod.

The kernel may give bind(0) the same port again once the probing socket is closed and before the
container binds it; two pods assigned together then collided (seen in `make demo`: one of them
crash-looped on EADDRINUSE)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents import runtime


def pod(*ports: int, host_port: int = 0) -> dict:
    return {
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "ports": [
                        {"containerPort": p, **({"hostPort": host_port} if host_port else {})} for p in ports
                    ],
                }
            ]
        }
    }


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ports bind(0) hands out, in order (a list the test fills)."""
    handed: list[int] = []
    monkeypatch.setattr(runtime, "free_port", lambda address: handed.pop(0))
    yield handed


def test_a_port_another_pod_holds_is_not_chosen(kernel: list[int]) -> None:
    kernel[:] = [5000, 5002]
    assert [m["hostPort"] for m in runtime.allocate_ports(pod(80), "127.0.0.1", taken=[5000])] == [5002]


def test_two_ports_of_one_pod_differ(kernel: list[int]) -> None:
    kernel[:] = [5000, 5000, 5001]
    assert [m["hostPort"] for m in runtime.allocate_ports(pod(80, 81), "127.0.0.1")] == [5000, 5001]


def test_a_set_host_port_is_kept(kernel: list[int]) -> None:
    assert [m["hostPort"] for m in runtime.allocate_ports(pod(80, host_port=8080), "127.0.0.1", [8080])] == [
        8080
    ]
