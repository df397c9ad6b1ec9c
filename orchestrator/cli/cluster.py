"""`skiff version`, `skiff cluster-info` and `skiff cluster status`: what the masters (and the
balancer) say of themselves."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from orchestrator import errors
from orchestrator.cli import printers
from orchestrator.cli.common import Ctx
from orchestrator.cli.parser import Subcommands
from orchestrator.transport import health

VERSION = "0.1.0"


async def cmd_version(ctx: Ctx) -> int:
    ctx.print(f"Client Version: skiff/{VERSION} (python {sys.version.split()[0]})")
    st = await ctx.client.status(ctx.client.current_master)
    ctx.print(f"Server Version: skiff master {st.name} at {st.address} ({st.role}, term {st.term})")
    return 0


async def master_statuses(ctx: Ctx) -> list[tuple[str, Any]]:
    """(address, MasterStatus or the error) for every configured master, asked concurrently."""

    async def one(addr: str) -> tuple[str, Any]:
        try:
            return addr, await ctx.client.status(addr, timeout=2.0)
        except errors.SkiffError as e:
            return addr, e

    return list(await asyncio.gather(*(one(m) for m in ctx.config.masters)))


def status_rows(results: list[tuple[str, Any]]) -> list[list[str]]:
    rows = []
    for addr, st in results:
        if isinstance(st, Exception):
            if isinstance(st, errors.Unauthenticated | errors.PermissionDenied):
                rows.append(["?", addr, f"error: {type(st).__name__}", "", "", "", "", "", "", "false"])
            else:
                rows.append(["?", addr, "unreachable", "-", "-", "-", "-", "-", "-", "false"])
            continue
        lease = f"{st.lease_holder}/{st.lease_term}" if st.lease_holder else "<none>"
        rows.append(
            [
                st.name,
                st.address or addr,
                st.role,
                str(st.term),
                str(st.commit_index),
                str(st.applied_index),
                str(st.revision),
                st.state_digest[:12] or "-",
                lease,
                str(st.healthy).lower(),
            ]
        )
    return rows


async def cmd_cluster_status(ctx: Ctx) -> int:
    results = await master_statuses(ctx)
    headers = [
        "NAME",
        "ADDRESS",
        "ROLE",
        "TERM",
        "COMMIT",
        "APPLIED",
        "REVISION",
        "DIGEST",
        "LEASE",
        "HEALTHY",
    ]
    ctx.print(printers.format_table(headers, status_rows(results)))
    lb = ctx.config.lb
    if lb and lb.get("address"):
        lb_health = (
            await health(f"{lb['address']}:{lb['healthPort']}", ctx.client.tls, timeout=2.0)
            if lb.get("healthPort")
            else "<unknown>"
        )
        ctx.print()
        ctx.print(
            printers.format_table(
                ["BALANCER", "ADDRESS", "HTTP", "METRICS", "HEALTH"],
                [
                    [
                        "lb",
                        str(lb["address"]),
                        str(lb.get("httpPort", "-")),
                        str(lb.get("metricsPort", "-")),
                        lb_health,
                    ]
                ],
            )
        )
    ok = [st for _, st in results if not isinstance(st, Exception)]
    if not ok:
        errs = "; ".join(f"{a}: {e}" for a, e in results)
        raise errors.Unavailable(f"no master answered ({', '.join(ctx.config.masters)}): {errs}")
    return 0


async def cmd_cluster_info(ctx: Ctx) -> int:
    results = await master_statuses(ctx)
    ok = [st for _, st in results if not isinstance(st, Exception)]
    if not ok:
        raise errors.Unavailable(f"no master answered ({', '.join(ctx.config.masters)}): unreachable")
    leader = next((st.leader for st in ok if st.leader), "") or "<none>"
    ctx.print(f"Skiff control plane is running at {', '.join(ctx.config.masters)} (raft leader: {leader})")
    if ctx.config.lb_http_address:
        ctx.print(f"Load balancer (NodePorts, Ingress) is running at http://{ctx.config.lb_http_address}")
    return 0


def register(sub: Subcommands) -> None:
    sub.add("version", "Print the client and server versions", cmd_version)
    sub.add("cluster-info", "Display addresses of the masters and the balancer", cmd_cluster_info)
    cluster = sub.group("cluster", "Cluster-level information", dest="cluster_what", metavar="status")
    cluster.add("status", "Every master's Raft view, and the balancer's health", cmd_cluster_status)
