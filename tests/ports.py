"""Free TCP ports on 127.0.0.1 for the servers the tests start."""

import socket

from local.ports import HOST


def free_port() -> int:
    """A port the OS says is free now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port
