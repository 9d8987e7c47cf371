"""Outgoing gRPC channels, reused across calls and closed together: plaintext ones to this
node's own services (a Unix socket or loopback), and TLS ones to other nodes, each pinned to
the certificate the peer's signed info names."""

import grpc

from kizuna_node.common import tls
from kizuna_node.common.errors import Unavailable
from kizuna_node.common.server import server_options

# A peer that went away and came back is reached again within about a second, not after
# gRPC's default reconnect backoff of up to two minutes.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class ChannelPool:
    def __init__(self):
        self._channels: dict[tuple[str, bytes], grpc.aio.Channel] = {}

    def get(self, address: str) -> grpc.aio.Channel:
        """A plaintext channel, for this node's own services only."""
        channel = self._channels.get((address, b""))
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=server_options() + RECONNECT_OPTIONS)
            self._channels[(address, b"")] = channel
        return channel

    def pinned(self, address: str, certificate: bytes) -> grpc.aio.Channel:
        """A TLS channel to another node that accepts only `certificate` (DER); Unavailable
        when the peer's info names none. A peer that changes its certificate gets a new
        channel, so no call goes to it on trust of the old one."""
        if not certificate:
            raise Unavailable(f"the peer at {address} names no TLS certificate; it cannot be called")
        key = (address, certificate)
        channel = self._channels.get(key)
        if channel is None:
            channel = grpc.aio.secure_channel(address, tls.pinned_credentials(certificate),
                                              options=server_options() + RECONNECT_OPTIONS + tls.PINNED_CHANNEL_OPTIONS)
            self._channels[key] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
