"""How the hub reaches the masters: addresses, TLS, bearer token, leader hints."""
import os
from dataclasses import dataclass
from typing import Tuple

import grpc

LEADER_TRAILER = "sched-leader"


@dataclass(frozen=True)
class FrameworkSettings:
    """Everything that identifies one hub's framework and how it talks to the masters.

    Spawners with equal settings share one framework (one subscription per hub)."""
    masters: Tuple[str, ...]
    name: str = "jupyterhub"
    role_prefix: str = "notebooks"
    failover_timeout: float = 7 * 24 * 3600
    user: str = ""
    principal: str = ""
    tls_ca: str = ""
    token: str = ""
    decline_seconds: float = 5.0
    kill_orphans: bool = True
    call_timeout: float = 15.0

    @staticmethod
    def parse_masters(text):
        """'h1:5050,h2:5050' → ('h1:5050', 'h2:5050'); raises ValueError for a malformed list."""
        masters = tuple(m.strip() for m in (text or "").split(",") if m.strip())
        if not masters:
            raise ValueError("no master address: set c.SchedulerSpawner.master = 'HOST:PORT' (or SCHED_MASTER)")
        for m in masters:
            host, sep, port = m.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"master address {m!r} is not HOST:PORT (e.g. 127.0.0.1:5050)")
        return masters


class MasterConnection:
    """The channel to the master believed to lead, following `sched-leader` hints and otherwise
    trying the configured masters in turn."""

    def __init__(self, settings: FrameworkSettings):
        self._settings = settings
        self._index = 0
        self.address = settings.masters[0]
        self._credentials = None
        if settings.tls_ca:
            with open(settings.tls_ca, "rb") as f:
                self._credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.metadata = (("authorization", "Bearer " + settings.token),) if settings.token else ()

    def open_channel(self):
        options = [("grpc.keepalive_time_ms", 20000), ("grpc.keepalive_timeout_ms", 10000),
                   ("grpc.keepalive_permit_without_calls", 1)]
        if self._credentials is not None:
            return grpc.aio.secure_channel(self.address, self._credentials, options=options)
        return grpc.aio.insecure_channel(self.address, options=options)

    def next_after(self, error):
        """Chooses the master to try after a failed call: the leader named in the error's
        `sched-leader` trailer when there is one, else the next configured master."""
        leader = None
        trailers = error.trailing_metadata() if isinstance(error, grpc.aio.AioRpcError) else None
        for key, value in trailers or ():
            if key == LEADER_TRAILER and value:
                leader = value
        if leader:
            self.address = leader
        else:
            self._index = (self._index + 1) % len(self._settings.masters)
            self.address = self._settings.masters[self._index]
        return self.address


def read_token(token, token_file):
    """The bearer token: the configured one, else the file's content, else SCHED_TOKEN."""
    if token:
        return token.strip()
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get("SCHED_TOKEN", "").strip()
