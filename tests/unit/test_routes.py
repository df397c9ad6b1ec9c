"""The routing table: listeners, backends, draining, and Ingress matching in both API forms."""

from __future__ import annotations

import pytest

from lb.routes import (
    EXACT,
    PREFIX,
    PathRule,
    RoutingTable,
    compute_table,
    draining,
    parse_fixed,
    path_matches,
)
from lb.testing import endpoints, service

ADDR = "127.0.0.1"


def table(services=(), eps=(), ings=(), http_port: int | None = 8080) -> RoutingTable:
    return compute_table(services, eps, ings, address=ADDR, http_port=http_port)


def test_listeners_for_cluster_ip_node_port_and_load_balancer() -> None:
    t = table(
        [
            service("a", 80, cluster_ip="127.1.0.10"),
            service("b", 81, cluster_ip="127.1.0.11", node_port=30001, type="NodePort"),
            service("c", 82, cluster_ip="127.1.0.12", node_port=30002, type="LoadBalancer"),
            service("headless", 83, cluster_ip="None"),
        ]
    )
    assert {k: v.backend for k, v in t.listeners.items()} == {
        (ADDR, 8080): None,
        ("127.1.0.10", 80): "default/a:80",
        ("127.1.0.11", 81): "default/b:81",
        (ADDR, 30001): "default/b:81",
        ("127.1.0.12", 82): "default/c:82",
        (ADDR, 30002): "default/c:82",
        (ADDR, 82): "default/c:82",
    }
    assert t.problems == ()


def test_port_conflict_is_reported_and_first_wins() -> None:
    t = table(
        [
            service("a", 80, node_port=30001, type="NodePort"),
            service("b", 80, node_port=30001, type="NodePort"),
        ]
    )
    assert t.listeners[(ADDR, 30001)].backend == "default/a:80"
    assert len(t.problems) == 1 and "30001" in t.problems[0]


@pytest.mark.parametrize(
    ("eps", "ready", "draining_keys"),
    [
        pytest.param(
            endpoints("a", [("127.0.2.1", 31000), ("127.0.2.2", 31001)]),
            ["127.0.2.1:31000", "127.0.2.2:31001"],
            set(),
            id="ready",
        ),
        pytest.param(
            endpoints("a", [("127.0.2.1", 31000)], not_ready=[("127.0.2.2", 31001)]),
            ["127.0.2.1:31000"],
            set(),
            id="not-ready-skipped",
        ),
        pytest.param(
            endpoints("a", [], terminating=[("127.0.2.2", 31001)]),
            [],
            {"127.0.2.2:31001"},
            id="terminating-drains",
        ),
        pytest.param(None, [], set(), id="no-endpoints-object"),
    ],
)
def test_backend_endpoints(eps, ready: list[str], draining_keys: set[str]) -> None:
    t = table([service("a", 80, cluster_ip="127.1.0.10")], [eps] if eps else [])
    b = t.backends["default/a:80"]
    assert [e.key for e in b.endpoints] == ready
    assert b.draining == draining_keys


def test_named_ports_pick_the_matching_endpoint_port() -> None:
    svc = service("a", 80, port_name="web")
    svc["spec"]["ports"].append({"name": "admin", "port": 81, "protocol": "TCP"})
    ep = {
        "kind": "Endpoints",
        "metadata": {"name": "a", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "127.0.2.1"}],
                "ports": [{"name": "web", "port": 31000}, {"name": "admin", "port": 31001}],
            }
        ],
    }
    t = table([svc], [ep])
    assert [e.key for e in t.backends["default/a:80"].endpoints] == ["127.0.2.1:31000"]
    assert [e.key for e in t.backends["default/a:81"].endpoints] == ["127.0.2.1:31001"]


def test_session_affinity() -> None:
    t = table([service("a", 80, affinity=60), service("b", 81)])
    assert t.backends["default/a:80"].affinity_timeout == 60.0
    assert t.backends["default/b:81"].affinity_timeout is None


def test_draining_between_tables() -> None:
    svc = [service("a", 80)]
    old = table(svc, [endpoints("a", [("127.0.2.1", 1), ("127.0.2.2", 2)])])
    new = table(svc, [endpoints("a", [("127.0.2.2", 2)], terminating=[("127.0.2.1", 1)])])
    assert draining(old, new) == {"default/a:80": frozenset({"127.0.2.1:1"})}
    assert draining(old, table()) == {"default/a:80": frozenset({"127.0.2.1:1", "127.0.2.2:2"})}
    assert draining(new, new) == {}


@pytest.mark.parametrize(
    ("rule", "path", "want"),
    [
        ("/", "/anything", True),
        ("/foo", "/foo", True),
        ("/foo", "/foo/", True),
        ("/foo", "/foo/bar", True),
        ("/foo", "/foobar", False),
        ("/foo/", "/foo", True),
        ("/aaa/bbb", "/aaa/bbbxyz", False),
        ("/aaa/bbb", "/aaa/bbb/ccc", True),
    ],
)
def test_prefix_matches_whole_segments(rule: str, path: str, want: bool) -> None:
    assert path_matches(PathRule(rule, False, "x"), path) is want


def test_exact() -> None:
    assert path_matches(PathRule("/foo", True, "x"), "/foo")
    assert not path_matches(PathRule("/foo", True, "x"), "/foo/")


def ing_v1(name: str, rules: list, default: tuple[str, object] | None = None) -> dict:
    spec: dict = {"rules": rules}
    if default:
        port = {"number": default[1]} if isinstance(default[1], int) else {"name": default[1]}
        spec["defaultBackend"] = {"service": {"name": default[0], "port": port}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def v1_path(path: str, svc: str, port: object, path_type: str = PREFIX) -> dict:
    p = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": path, "pathType": path_type, "backend": {"service": {"name": svc, "port": p}}}


SERVICES = [
    service(n, 80, port_name="http") for n in ("web", "api", "apiv2", "exact", "wild", "fallback", "old")
]


def test_ingress_v1_rules() -> None:
    ing = ing_v1(
        "main",
        [
            {
                "host": "demo.local",
                "http": {
                    "paths": [
                        v1_path("/", "web", 80),
                        v1_path("/api", "api", "http"),
                        v1_path("/api/v2", "apiv2", 80),
                        v1_path("/exact", "exact", 80, EXACT),
                    ]
                },
            },
            {"host": "*.wild.local", "http": {"paths": [v1_path("/", "wild", 80)]}},
        ],
        default=("fallback", "http"),
    )
    r = table(SERVICES, [], [ing]).ingress
    cases = {
        ("demo.local", "/"): "default/web:80",
        ("DEMO.local", "/x"): "default/web:80",
        ("demo.local", "/api"): "default/api:80",
        ("demo.local", "/api/users"): "default/api:80",
        ("demo.local", "/apiary"): "default/web:80",
        ("demo.local", "/api/v2/x"): "default/apiv2:80",
        ("demo.local", "/exact"): "default/exact:80",
        ("demo.local", "/exact/x"): "default/web:80",
        ("a.wild.local", "/"): "default/wild:80",
        ("a.b.wild.local", "/"): "default/fallback:80",
        ("wild.local", "/"): "default/fallback:80",
        ("other", "/"): "default/fallback:80",
    }
    for (host, path), want in cases.items():
        assert r.match(host, path) == want, (host, path)


def test_ingress_v1beta1_form_and_no_default() -> None:
    ing = {
        "apiVersion": "extensions/v1beta1",
        "kind": "Ingress",
        "metadata": {"name": "old", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "host": "old.local",
                    "http": {
                        "paths": [{"path": "/app", "backend": {"serviceName": "old", "servicePort": 80}}]
                    },
                },
                {
                    "http": {
                        "paths": [{"path": "/web", "backend": {"serviceName": "web", "servicePort": "http"}}]
                    }
                },
            ]
        },
    }
    r = table(SERVICES, [], [ing]).ingress
    assert r.match("old.local", "/app/x") == "default/old:80"
    assert r.match("old.local", "/web") == "default/web:80"  # host rules miss: rules without host apply
    assert r.match("x", "/web/1") == "default/web:80"
    assert r.match("x", "/nothing") is None


def test_ingress_v1beta1_default_backend() -> None:
    ing = {
        "apiVersion": "extensions/v1beta1",
        "kind": "Ingress",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"backend": {"serviceName": "fallback", "servicePort": 80}},
    }
    assert table(SERVICES, [], [ing]).ingress.match("any", "/") == "default/fallback:80"


def test_ingress_unknown_port_name_is_a_problem() -> None:
    ing = ing_v1("x", [{"http": {"paths": [v1_path("/", "web", "nope")]}}])
    t = table(SERVICES, [], [ing])
    assert any("nope" in p for p in t.problems)


# ---------------------------------------------------------------- fixed services (the masters' API port)


@pytest.mark.parametrize(
    ("text", "port", "endpoints"),
    [
        ("kube-api=6443:127.0.1.1:41000", 6443, (("127.0.1.1", 41000),)),
        ("api=6443:10.0.0.1:1,10.0.0.2:2,", 6443, (("10.0.0.1", 1), ("10.0.0.2", 2))),
    ],
)
def test_parse_fixed(text: str, port: int, endpoints: tuple) -> None:
    f = parse_fixed(text)
    assert (f.port, f.endpoints) == (port, endpoints)


@pytest.mark.parametrize(
    "text", ["kube-api", "=6443:a:1", "api=x:a:1", "api=6443:", "api=6443:host", "api=6443:host:p"]
)
def test_parse_fixed_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fixed(text)


def test_a_fixed_service_listens_before_any_service() -> None:
    f = parse_fixed("kube-api=30000:127.0.1.1:41000,127.0.1.2:41001")
    svc = service("web", 80, node_port=30000, type="NodePort")
    t = compute_table([svc], [], [], address=ADDR, http_port=None, fixed=[f])
    assert t.listeners[(ADDR, 30000)].backend == "fixed/kube-api"
    assert [ep.key for ep in t.backends["fixed/kube-api"].endpoints] == ["127.0.1.1:41000", "127.0.1.2:41001"]
    assert any("30000" in p for p in t.problems)
