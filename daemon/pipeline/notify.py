"""systemd notification without a dependency: one datagram per message to $NOTIFY_SOCKET.

``READY=1`` when the first result went through the publisher, ``STATUS=`` with
the current rates, ``WATCHDOG=1`` only while the pipeline makes progress,
``STOPPING=1`` on shutdown. Outside systemd (no NOTIFY_SOCKET) it does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or pid == str(os.getpid())
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and for_us else None
        """Ping this often (half of WatchdogSec), or never (None)."""

    def send(self, *assignments: str) -> None:
        if not self.address:
            return
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)
