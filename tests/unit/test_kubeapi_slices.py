"""EndpointSlices derived from Endpoints: one per subset, labelled with the Service's name."""

from __future__ import annotations

from orchestrator.kubeapi.slices import SERVICE_NAME, slices_of


def endpoints(*subsets: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "demo", "namespace": "default", "uid": "u", "resourceVersion": "7"},
        "subsets": list(subsets),
    }


def test_one_slice_per_subset_with_ready_and_not_ready_endpoints() -> None:
    ep = endpoints(
        {
            "addresses": [{"ip": "127.0.2.1", "nodeName": "worker-1"}],
            "notReadyAddresses": [{"ip": "127.0.2.2"}],
            "ports": [{"port": 30001, "protocol": "TCP"}],
        },
        {"addresses": [{"ip": "127.0.2.3"}], "ports": [{"name": "web", "port": 30002}]},
    )
    first, second = slices_of(ep)
    assert first["metadata"]["name"] == "demo-0" and second["metadata"]["name"] == "demo-1"
    assert first["metadata"]["labels"][SERVICE_NAME] == "demo"
    assert [(e["addresses"], e["conditions"]["ready"]) for e in first["endpoints"]] == [
        (["127.0.2.1"], True),
        (["127.0.2.2"], False),
    ]
    assert first["endpoints"][0]["nodeName"] == "worker-1"
    assert first["ports"] == [{"name": "", "port": 30001, "protocol": "TCP"}]
    assert second["ports"] == [{"name": "web", "port": 30002, "protocol": "TCP"}]


def test_no_subsets_no_slices() -> None:
    assert slices_of(endpoints()) == []
