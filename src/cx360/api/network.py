"""Who the client is and whether it came over HTTPS, believing forwarded headers only from the
proxies the operator named (`[serve] trusted_proxies`, `cx360 serve --trusted-proxy`): anyone else
could write any address into X-Forwarded-For and forge the audit log."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Proxies:
    def __init__(self, trusted: Iterable[str] = ()):
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    def trusts(self, host: str | None) -> bool:
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client address: the peer, unless it is a trusted proxy; then the last address in
        X-Forwarded-For that is not a trusted proxy itself (each proxy appends what it saw)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer

    def https(self, scheme: str, peer: str | None, forwarded_proto: str | None) -> bool:
        if scheme == "https":
            return True
        return bool(forwarded_proto) and self.trusts(peer) and forwarded_proto.split(",")[0].strip().lower() == "https"
