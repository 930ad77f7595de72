"""Port choice: use the preferred port when it is free, otherwise a free one, and say so."""

from __future__ import annotations

from collections.abc import Callable

from deploy.local.infra import free_port, port_in_use

Announce = Callable[[str], None]


class PortPicker:
    """Hands out ports, never the same one twice and never one somebody already listens on."""

    def __init__(self, announce: Announce, host: str = "127.0.0.1") -> None:
        self.announce = announce
        self.host = host
        self.taken: set[int] = set()

    def pick(self, what: str, preferred: int) -> int:
        if preferred not in self.taken and not port_in_use(preferred, self.host):
            self.taken.add(preferred)
            return preferred
        port = free_port(self.host)
        while port in self.taken:  # pragma: no cover - the kernel rarely repeats itself at once
            port = free_port(self.host)
        self.taken.add(port)
        self.announce(f"port {preferred} is already in use; {what} takes free port {port} instead")
        return port
