"""``detector-web``: the live viewer. Subscribes to the detectors' MQTT topics and serves the page."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

import psutil

from detectord.contract import BrokerConfig, password_from_environment
from detectord.contract.broker import DEFAULT_HOST, DEFAULT_PORT
from detectord.contract.link import quiet_cancellations
from detectord.contract.topics import DEFAULT_PREFIX

from .bridge import Bridge
from .hub import Hub
from .server import Access, make_app

log = logging.getLogger("detectord.web")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--mqtt-host", default=DEFAULT_HOST)
    parser.add_argument("--mqtt-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--mqtt-username")
    parser.add_argument("--mqtt-password", help="prefer the environment: DETECTORD_MQTT_PASSWORD")
    parser.add_argument("--mqtt-tls", action="store_true", help="connect with TLS")
    parser.add_argument("--mqtt-tls-ca", type=Path, metavar="PEM", help="trust this CA (a private CA's certificate)")
    parser.add_argument("--mqtt-tls-cert", type=Path, metavar="PEM", help="client certificate, if the broker asks")
    parser.add_argument("--mqtt-tls-key", type=Path, metavar="PEM", help="its private key")
    parser.add_argument("--topic-prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--token", help="require this token (?token=…); prefer DETECTOR_WEB_TOKEN")
    parser.add_argument(
        "--metrics-token", help="/metrics requires this one instead (Bearer); prefer DETECTOR_WEB_METRICS_TOKEN"
    )
    parser.add_argument(
        "--allow-origin", action="append", default=[], metavar="URL", help="another origin allowed to connect"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name this server is reached by (a reverse proxy's, a DNS name); requests naming "
        "any other host are refused",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_hosts(listen: str, extra: list[str]) -> frozenset[str]:
    """The names requests may give in ``Host``: loopback, the listen address, and where it listens on every
    address, this machine's names and addresses; plus ``--allow-host``."""
    names = set(LOOPBACK) | {name.strip().lower() for name in extra} | {listen.lower()}
    if listen in ANY_ADDRESS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        names |= {
            address.address.split("%")[0].lower()
            for addresses in psutil.net_if_addrs().values()
            for address in addresses
            if address.family in (socket.AF_INET, socket.AF_INET6)
        }
    return frozenset(names - {""})


def _broker(args: argparse.Namespace) -> BrokerConfig:
    password = password_from_environment(args.mqtt_password)
    return BrokerConfig(
        host=args.mqtt_host,
        port=args.mqtt_port,
        username=args.mqtt_username,
        password=password if args.mqtt_username else None,
        tls=args.mqtt_tls,
        tls_ca=args.mqtt_tls_ca,
        tls_cert=args.mqtt_tls_cert,
        tls_key=args.mqtt_tls_key,
        topic_prefix=args.topic_prefix,
    )


async def serve(args: argparse.Namespace) -> None:
    broker = _broker(args)
    token = args.token or os.environ.get("DETECTOR_WEB_TOKEN") or None
    hub = Hub()
    bridge = Bridge(hub, broker)
    metrics_token = args.metrics_token or os.environ.get("DETECTOR_WEB_METRICS_TOKEN") or None
    access = Access(token, metrics_token, frozenset(args.allow_origin), allowed_hosts(args.host, args.allow_host))
    app = make_app(hub, access, lambda: bridge.connected)
    server = app.listen(args.port, address=args.host, xheaders=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_cancellations)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    connecting = asyncio.create_task(bridge.run())
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/" + ("?token=…" if token else "")
    log.info("viewer on %s (broker %s)", url, broker.address)
    sys.stdout.write(f"detector-web: open {url}\n")
    sys.stdout.flush()
    await stop.wait()
    connecting.cancel()
    server.stop()
    for client in list(hub.clients):
        hub.remove(client)
    await bridge.close()


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="detector-web: %(message)s")
    if args.mqtt_username and password_from_environment(args.mqtt_password) is None:
        log.error("error: --mqtt-username needs a password (--mqtt-password or DETECTORD_MQTT_PASSWORD)")
        return 2
    try:
        _broker(args)
    except ValueError as exc:
        log.error("error: %s", exc)
        return 2
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        log.error("error: cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return 1
    return 0


def entry_point() -> NoReturn:
    sys.exit(main())
