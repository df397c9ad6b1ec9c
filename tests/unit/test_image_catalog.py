"""Image resolution: names, tags, aliases and Kubernetes' command/args override rules."""

from __future__ import annotations

import sys

import pytest

from agents import images

CATALOG = images.parse_catalog(
    {
        "images": {
            "jweissig/alpine-k8s-pod-lb-demo": {
                "aliases": ["demo"],
                "command": ["{python}", "{agents}/demo_server.py"],
            },
            "busybox": {"command": ["sh"], "args": ["-i"], "env": {"A": "1"}},
        }
    }
)


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("docker.io/library/busybox:latest", "busybox"),
        ("docker.io/jweissig/alpine-k8s-pod-lb-demo", "jweissig/alpine-k8s-pod-lb-demo"),
        ("jweissig/alpine-k8s-pod-lb-demo:latest", "jweissig/alpine-k8s-pod-lb-demo"),
        ("localhost:5000/busybox", "localhost:5000/busybox"),
        ("busybox@sha256:abc", "busybox"),
    ],
)
def test_normalize(name: str, normal: str) -> None:
    assert images.normalize_image_name(name) == normal


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({"image": "busybox"}, ("sh", "-i")),
        ({"image": "busybox", "command": ["sleep"]}, ("sleep",)),
        ({"image": "busybox", "args": ["-c", "true"]}, ("sh", "-c", "true")),
        ({"image": "busybox", "command": ["echo"], "args": ["hi"]}, ("echo", "hi")),
        ({"image": "busybox", "command": ["echo", "$(A)", "$(B)", "$$(A)"]}, ("echo", "1", "$(B)", "$(A)")),
        ({"image": "busybox", "command": ["python", "-V"]}, (sys.executable, "-V")),
    ],
    ids=["default", "command-drops-args", "args-only", "both", "expansion", "python"],
)
def test_resolve_overrides(container: dict, argv: tuple[str, ...]) -> None:
    assert images.resolve(CATALOG, container).argv == argv


def test_env_precedence() -> None:
    prog = images.resolve(
        CATALOG,
        {"image": "busybox", "env": [{"name": "A", "value": "pod"}, {"name": "C", "value": "$(PORT)x"}]},
        {"PORT": "8080", "A": "agent"},
    )
    assert prog.env["A"] == "pod" and prog.env["PORT"] == "8080" and prog.env["C"] == "8080x"


def test_demo_placeholders_and_alias() -> None:
    prog = images.resolve(CATALOG, {"image": "demo:latest"})
    assert prog.argv[0] == sys.executable
    assert prog.argv[1].endswith("agents/demo_server.py")


def test_unknown_image() -> None:
    with pytest.raises(images.ImageNotFound, match="Failed to pull image"):
        images.resolve(CATALOG, {"image": "nope:1"})


def test_shipped_catalog_has_the_demo() -> None:
    cat = images.load_catalog()
    for name in ("jweissig/alpine-k8s-pod-lb-demo", "demo", "busybox", "python"):
        images.lookup(cat, name)
