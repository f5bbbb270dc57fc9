"""The stack's TCP ports on 127.0.0.1: checked free before anything starts, and free again after it stops."""

from __future__ import annotations

import socket
from dataclasses import dataclass

HOST = "127.0.0.1"


class PortBusyError(RuntimeError):
    """A port the stack needs is taken; the message names it and the option that moves it."""


@dataclass(frozen=True)
class Ports:
    aws: int = 4566
    emr: int = 4567
    api: int = 3000

    def named(self) -> dict[str, tuple[int, str]]:
        return {
            "local AWS services (moto)": (self.aws, "--aws-port"),
            "local EMR Serverless": (self.emr, "--emr-port"),
            "HTTP API": (self.api, "--api-port"),
        }


def is_free(port: int) -> bool:
    with socket.socket() as probe:
        # as the servers bind: connections left in TIME_WAIT by a stopped server do not make a port busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def check_free(ports: Ports) -> None:
    for what, (port, option) in ports.named().items():
        if not is_free(port):
            raise PortBusyError(
                f"port {port} on {HOST} ({what}) is already in use: stop what holds it "
                f"(`ss -ltnp 'sport = :{port}'`) or choose another port with {option} PORT"
            )
