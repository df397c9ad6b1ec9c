"""A master: the replicated store, the gRPC server (API, agent gateway, health) and the controllers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orchestrator import transport
from orchestrator.api.gateway import NodeGatewayServicer
from orchestrator.api.servicer import ApiServicer
from orchestrator.audit import AuditLog
from orchestrator.auth import Authenticator
from orchestrator.gcpause import Freezer
from orchestrator.kubeapi.server import KubeApi, serve, server_ssl_context
from orchestrator.leader import LeaseKeeper, LocalCluster
from orchestrator.store.admission import Admission, Limits
from orchestrator.store.raft import RaftTiming, Store
from orchestrator.transport import KEEPALIVE_MS, ClientTLS, ServerTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

# An agent's open stream is its node's liveness (api.gateway), so the master pings every connection
# each KEEPALIVE_MS, also when no data flows, and ends a connection that does not answer in as long.
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_MS),  # grpc 1.85 times pings out by this (60 s unset)
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MS // 2),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),  # a List answer may be large
    ("grpc.so_reuseport", 0),
]


@dataclass
class MasterOptions:
    name: str
    api_address: str
    raft_address: str
    peers: list[str]
    data_dir: str
    tokens_file: str
    # The gRPC API's certificate (None: plaintext, --insecure) and the CA agents' certificates are
    # checked against when the master relays their logs.
    grpc_tls: ServerTLS | None
    agent_tls: ClientTLS
    raft_password: str | None = None
    timing: RaftTiming = field(default_factory=RaftTiming)
    node_grace: float = 3.0
    pod_eviction_timeout: float = 2.0
    lease_duration: float = 3.0
    controllers: bool = True
    kube_api: str = ""  # host:port of the Kubernetes REST API ("" = not served)
    tls_cert_file: str = ""
    tls_key_file: str = ""
    kube_api_insecure: bool = False  # plain HTTP: only when asked for explicitly
    ingress_address: str = ""  # where the balancer serves ingresses (the ADDRESS column)
    audit_log: str = ""  # a file: one line per write through either API ("" = no audit log)
    limits: Limits = field(default_factory=Limits)  # what API clients may have in flight


def create_server(address: str, tls: ServerTLS | None) -> tuple[grpc.aio.Server, int]:
    """A gRPC server bound to `address` (port 0 = any), TLS unless `tls` is None; returns it with the port."""
    server = transport.server(SERVER_OPTIONS)
    return server, transport.add_port(server, address, tls)


class Master:
    def __init__(self, options: MasterOptions) -> None:
        self.options = options
        self.auth = Authenticator.from_file(options.tokens_file)
        self.store = Store(
            options.raft_address, options.peers, options.data_dir, options.timing, options.raft_password
        )
        self.api_port = 0
        self.kube_api_port = 0
        self.audit = AuditLog(options.audit_log) if options.audit_log else None
        self.admission = Admission(options.limits)

    async def status(self) -> api.MasterStatus:
        revision, digest = await self.store.digest()
        raft = self.store.raft_status()
        lease = self.store.lease()
        state = {0: "follower", 1: "candidate", 2: "leader"}.get(
            raft.get("state", -1), str(raft.get("state"))
        )
        host = self.options.api_address.rsplit(":", 1)[0]
        return api.MasterStatus(
            name=self.options.name,
            address=f"{host}:{self.api_port}",
            raft_address=self.options.raft_address,
            role=state,
            term=raft.get("raft_term", 0),
            commit_index=raft.get("commit_idx", 0),
            applied_index=raft.get("last_applied", 0),
            leader=str(raft.get("leader") or ""),
            revision=revision,
            state_digest=digest,
            lease_holder=lease.holder,
            lease_term=lease.term,
            healthy=bool(raft.get("leader")) and bool(raft.get("has_quorum", True)),
            peers=self.options.peers,
            partner_nodes_connected=self.gateway.connected if hasattr(self, "gateway") else 0,
            raft_rejected=self.store.raft_rejected,
        )

    async def _run_controllers(self, cluster: LocalCluster) -> None:
        from orchestrator.controllers.manager import ControllerManager, ControllerOptions

        options = ControllerOptions(
            node_grace=self.options.node_grace, node_toleration=self.options.pod_eviction_timeout
        )
        await ControllerManager(cluster, options).run()

    def has_leader(self) -> bool:
        return bool(self.store.raft_status().get("leader"))

    async def _serve_kube_api(self) -> web.AppRunner:
        o = self.options
        if o.kube_api_insecure:
            ssl_context = None
        elif o.tls_cert_file and o.tls_key_file:
            ssl_context = server_ssl_context(o.tls_cert_file, o.tls_key_file)
        else:
            raise ValueError("--kube-api needs --tls-cert-file and --tls-key-file (or --kube-api-insecure)")
        runner, self.kube_api_port = await serve(
            KubeApi(
                self.store,
                self.auth,
                self.has_leader,
                ingress_address=o.ingress_address,
                audit=self.audit,
                agent_tls=o.agent_tls,
                admission=self.admission,
            ),
            o.kube_api,
            ssl_context,
        )
        host = o.kube_api.rsplit(":", 1)[0]
        log.info(
            "kubernetes api serving name=%s url=%s://%s:%d",
            o.name,
            "http" if ssl_context is None else "https",
            host,
            self.kube_api_port,
        )
        return runner

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; then shut down in order: stop accepting, drain, cancel."""
        loop = asyncio.get_running_loop()
        self.store.attach(loop)
        server, self.api_port = create_server(self.options.api_address, self.options.grpc_tls)
        self.gateway = NodeGatewayServicer(self.store, self.auth)
        api_grpc.add_ApiServicer_to_server(
            ApiServicer(
                self.store,
                self.auth,
                self.status,
                self.audit,
                agent_tls=self.options.agent_tls,
                admission=self.admission,
            ),
            server,
        )
        api_grpc.add_NodeGatewayServicer_to_server(self.gateway, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        await server.start()
        log.info(
            "master serving name=%s api=%s:%d (%s) raft=%s peers=%s",
            self.options.name,
            self.options.api_address.rsplit(":", 1)[0],
            self.api_port,
            "plaintext" if self.options.grpc_tls is None else "TLS",
            self.options.raft_address,
            ",".join(self.options.peers),
        )
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        kube_runner = await self._serve_kube_api() if self.options.kube_api else None
        keeper = LeaseKeeper(
            self.store, self.options.name, self._run_controllers, duration=self.options.lease_duration
        )
        try:
            async with asyncio.TaskGroup() as tg:
                keeper_task = tg.create_task(keeper.run()) if self.options.controllers else None
                freezer = tg.create_task(Freezer().run())  # short GC pauses: see orchestrator.gcpause
                await stop.wait()
                freezer.cancel()
                log.info("shutting down name=%s", self.options.name)
                await health_servicer.enter_graceful_shutdown()
                if keeper_task is not None:
                    keeper_task.cancel()
        finally:
            if kube_runner is not None:
                await kube_runner.cleanup()
            await server.stop(grace=1.0)
            with contextlib.suppress(Exception):
                self.store.destroy()
            log.info("stopped name=%s", self.options.name)
