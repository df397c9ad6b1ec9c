"""The CLI is a client of the API: it imports the client, the model, the errors and skiffpb, nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "orchestrator" / "cli"
ALLOWED = ("orchestrator.cli", "orchestrator.client", "orchestrator.model", "orchestrator.errors", "skiffpb")


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_imports_only_the_client_side(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("orchestrator", "agents", "lb"):
                assert name == "orchestrator" or name.startswith(ALLOWED), f"{path.name} imports {name}"
