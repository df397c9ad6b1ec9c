"""Imports point one way, lower layers first, over the whole tree.

Each room of the code may import only the rooms listed for it (its own included); a module is
governed by the longest prefix in RULES that names it. The edges (agents, lb, the CLI) are clients of
the API and never reach into the store or the controllers; the store knows nothing of the edges or
the controllers above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("orchestrator", "agents", "lb", "chaos", "bench")

ERRORS, MODEL, VALIDATION = "orchestrator.errors", "orchestrator.model", "orchestrator.validation"
DECODING = "orchestrator.decoding"
PURE = (ERRORS, MODEL, VALIDATION, DECODING, "orchestrator.workloads", "orchestrator.tables")
TRANSPORT = "orchestrator.transport"
CLIENT_SIDE = (*PURE, "orchestrator.client", "orchestrator.procs", "orchestrator.auth", TRANSPORT)

# module prefix -> what it may import of ours (None: wiring, anything below it).
RULES: dict[str, tuple[str, ...] | None] = {
    "orchestrator": None,  # the package itself and its wiring (__main__, master, demo)
    ERRORS: (),
    VALIDATION: (),
    DECODING: (),
    MODEL: (ERRORS, VALIDATION),
    "orchestrator.workloads": (ERRORS, MODEL),
    "orchestrator.tables": (ERRORS, MODEL, "orchestrator.workloads"),
    "orchestrator.scheduling": (ERRORS, MODEL),
    "orchestrator.auth": (ERRORS,),
    "orchestrator.audit": ("orchestrator.auth",),
    "orchestrator.procs": (),
    TRANSPORT: (),
    "orchestrator.client": (ERRORS, MODEL, "orchestrator.auth", TRANSPORT),
    "orchestrator.store": (ERRORS, MODEL, VALIDATION, "orchestrator.store"),
    "orchestrator.controllers": (*PURE, "orchestrator.scheduling", "orchestrator.controllers"),
    "orchestrator.leader": (ERRORS, MODEL, "orchestrator.store"),
    "orchestrator.api": (
        *PURE,
        "orchestrator.auth",
        "orchestrator.audit",
        "orchestrator.client",
        "orchestrator.store",
        "orchestrator.api",
        TRANSPORT,
    ),
    "orchestrator.kubeapi": (
        *PURE,
        "orchestrator.auth",
        "orchestrator.audit",
        "orchestrator.client",
        "orchestrator.store",
        "orchestrator.api",
        "orchestrator.kubeapi",
        TRANSPORT,
    ),
    "orchestrator.certs": (),
    "orchestrator.kubeconfig": (),
    "orchestrator.cli": (*CLIENT_SIDE, "orchestrator.kubeconfig", "orchestrator.certs", "orchestrator.cli"),
    "orchestrator.demo": (*CLIENT_SIDE, "orchestrator.cli"),
    "agents": (*CLIENT_SIDE, "agents"),
    "lb": (*CLIENT_SIDE, "lb"),
    "chaos": (*CLIENT_SIDE, "chaos"),
    "bench": None,  # measures every layer, raw Raft included
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> list[Path]:
    return sorted(p for top in OURS for p in (ROOT / top).rglob("*.py"))


KNOWN = {module_name(p) for p in our_modules()}


def imports_of(source: str, package: str = "") -> set[str]:
    """The modules of ours that `source` imports (`from a import b` counts as a.b when b is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in KNOWN else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


def rule_for(module: str) -> tuple[str, tuple[str, ...] | None]:
    matches = [p for p in RULES if module == p or module.startswith(p + ".")]
    assert matches, f"no rule covers {module}: add it to RULES"
    prefix = max(matches, key=len)
    return prefix, RULES[prefix]


def wrong_way(module: str, imported: set[str]) -> list[str]:
    _, allowed = rule_for(module)
    if allowed is None:
        return []
    return sorted(
        m
        for m in imported
        if m != "orchestrator" and not any(m == a or m.startswith(a + ".") for a in allowed)
    )


@pytest.mark.parametrize("path", our_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    bad = wrong_way(module, imports_of(path.read_text(), package))
    assert not bad, f"{module} ({rule_for(module)[0]}) imports {bad}"


@pytest.mark.parametrize(
    ("module", "source", "bad"),
    [
        ("agents.agent", "from orchestrator.store.raft import Store", ["orchestrator.store.raft"]),
        ("lb.watch", "from orchestrator.controllers import base", ["orchestrator.controllers.base"]),
        ("orchestrator.store.state", "from orchestrator.api import servicer", ["orchestrator.api.servicer"]),
        (
            "orchestrator.store.raft",
            "import orchestrator.controllers.manager",
            ["orchestrator.controllers.manager"],
        ),
        ("orchestrator.cli.main", "from orchestrator import leader", ["orchestrator.leader"]),
        ("orchestrator.model", "from orchestrator.client import ApiClient", ["orchestrator.client"]),
        ("agents.agent", "from orchestrator import errors, model", []),
        ("orchestrator.cli.main", "from orchestrator.client import ApiClient", []),
    ],
    ids=[
        "agent-store",
        "lb-controllers",
        "store-api",
        "store-controllers",
        "cli-leader",
        "model-client",
        "ok-agent",
        "ok-cli",
    ],
)
def test_a_wrong_way_import_is_caught(module: str, source: str, bad: list[str]) -> None:
    assert wrong_way(module, imports_of(source, module.rpartition(".")[0])) == bad
