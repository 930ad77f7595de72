"""A NATS cluster on loopback (:class:`NatsCluster`), and waiting for it to be able to hold R3 streams."""

from __future__ import annotations

from pathlib import Path

import nats
import nats.js.api

from deploy.local.infra import NatsServer, free_port
from deploy.local.nats_authz import write_private
from tests.helpers.wait import wait_until


async def wait_for_jetstream(urls: list[str], timeout: float = 30.0) -> None:
    """Until the cluster can place a stream on every server (a meta leader, and every peer known online)."""
    probe = nats.js.api.StreamConfig(
        name="CLUSTER_READY",
        subjects=["cluster.ready"],
        num_replicas=len(urls),
        storage=nats.js.api.StorageType.MEMORY,
    )
    async with await nats.connect(urls, connect_timeout=2) as nc:
        js = nc.jetstream(timeout=2)

        async def placed() -> bool:
            try:
                await js.add_stream(probe)
                await js.delete_stream("CLUSTER_READY")
            except (nats.errors.Error, TimeoutError):
                return False
            return True

        await wait_until(placed, timeout=timeout, interval=0.1, message="a stream on every server")


class NatsCluster:
    """Three JetStream servers on loopback joined by cluster routes: R3 streams, and nodes to kill.

    Each node is a :class:`NatsServer` (the same binary) with a config file of its own:
    ``server_name``, the shared cluster name and the routes to every node (its own included,
    which nats-server ignores), and ``jetstream.sync_interval`` (``always``: every write is
    fsynced before it is acknowledged, as in the Kubernetes values), then ``extra_config`` (an
    authorization block, say).  A client connects with :attr:`seed_url`, every node's URL
    separated by commas, as ``NATS_URL`` takes it.
    """

    def __init__(self, base_dir: Path, *, extra_config: str = "") -> None:
        name = "ipaas"
        route_ports = [free_port() for _ in range(3)]
        routes = ", ".join(f'"nats://127.0.0.1:{p}"' for p in route_ports)
        self.nodes: list[NatsServer] = []
        for i, route_port in enumerate(route_ports):
            node_dir = base_dir / f"n{i + 1}"
            node_dir.mkdir(parents=True, exist_ok=True)
            config = node_dir / "cluster.conf"
            write_private(
                config,  # extra_config may hold passwords
                f'server_name: "{name}-n{i + 1}"\n'
                "jetstream { sync_interval: always }\n"
                f'cluster {{ name: "{name}", listen: "127.0.0.1:{route_port}", routes: [{routes}] }}\n' + extra_config,
            )
            self.nodes.append(
                NatsServer(node_dir / "store", free_port(), config_file=config, log_file=node_dir / "nats.log")
            )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def seed_url(self) -> str:
        return ",".join(self.urls)

    def node_named(self, server_name: str) -> NatsServer:
        """The node whose ``server_name`` (``ipaas-n<i>``) this is."""
        return self.nodes[[f"ipaas-n{i + 1}" for i in range(len(self.nodes))].index(server_name)]

    def start(self, timeout: float = 30.0) -> None:
        """Start every node (each listens for clients at once, and keeps dialling the routes of the others).

        JetStream needs a quorum before it answers: wait for that separately (the tests'
        ``wait_for_jetstream``).
        """
        try:
            for node in self.nodes:
                node.start(timeout)
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()
