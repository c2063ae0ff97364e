"""sd_notify without systemd: a real datagram socket stands in for $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectord.daemon.pipeline.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_messages_reach_the_notify_socket_one_datagram_each(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.send("READY=1", "STATUS=running")
    notifier.send("WATCHDOG=1")
    assert sock.recv(4096) == b"READY=1\nSTATUS=running"
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_an_abstract_socket_name_starting_with_at_is_used_as_systemd_means_it() -> None:
    name = f"detectord-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).send("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({})
    notifier.send("READY=1")
    assert notifier.watchdog_interval_s is None


def test_a_socket_that_is_gone_is_not_an_error(tmp_path: Path) -> None:
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")}).send("READY=1")


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
    ids=["half-of-watchdogsec", "for-this-pid", "for-another-pid", "zero", "not-a-number"],
)
def test_the_watchdog_is_pinged_at_half_its_interval_and_only_when_it_is_meant_for_us(
    environ: dict[str, str], interval: float | None
) -> None:
    assert Notifier(environ).watchdog_interval_s == interval
