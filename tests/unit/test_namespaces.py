"""Namespaces: a Namespace object is validated and defaulted like Kubernetes', and deleting it deletes
what is in it (Kubernetes' namespace controller), pods on nodes gracefully."""

from __future__ import annotations

from orchestrator import model
from orchestrator.store import commands as c
from orchestrator.store import state as st


def ns(name: str) -> dict:
    return model.apply_defaults(
        model.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    )


def cm(name: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def pod(name: str, namespace: str, node: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "demo"}]},
        "status": {"phase": "Running"},
    }


def test_a_namespace_is_cluster_scoped_and_active() -> None:
    obj = ns("team-a")
    assert "namespace" not in obj["metadata"]
    assert obj["status"] == {"phase": "Active"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}


def test_deleting_a_namespace_deletes_what_is_in_it() -> None:
    s = st.State()
    for i, obj in enumerate([ns("team-a"), cm("a", "team-a"), cm("b", "team-a"), cm("a", "default")]):
        assert st.apply(s, c.create(obj, uid=f"u{i}", now=1.0, rid=f"r{i}"))[0] == "ok"
    assert st.apply(s, c.create(pod("p", "team-a", "w1"), uid="up", now=1.0, rid="rp"))[0] == "ok"
    code, _ = st.apply(
        s,
        c.delete("Namespace", "", "team-a", resource_version="", force=False, grace=None, now=2.0, rid="rd"),
    )
    assert code == "ok"
    assert s.get("Namespace", "", "team-a") is None
    assert s.get("ConfigMap", "team-a", "a") is None and s.get("ConfigMap", "team-a", "b") is None
    assert s.get("ConfigMap", "default", "a") is not None  # another namespace is untouched
    running = s.get("Pod", "team-a", "p")
    assert running is not None and running["metadata"].get("deletionTimestamp")  # stopped gracefully
