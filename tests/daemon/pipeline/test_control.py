"""The supervisor's messages to a downstream stage: only the newest value of each kind matters."""

from __future__ import annotations

import multiprocessing as mp
import threading

from detectord.daemon.pipeline import control


def test_the_inbox_keeps_the_newest_message_of_each_kind() -> None:
    receive, send = mp.Pipe(duplex=False)
    inbox = control.Inbox(receive)
    control.send(send, control.STATS, 1)
    control.send(send, control.MODEL, "a")
    control.send(send, control.STATS, 2)
    assert inbox.poll(timeout=5) == {control.STATS: 2, control.MODEL: "a"}
    assert inbox.poll() == {control.STATS: 2, control.MODEL: "a"}, "what was read stays known"


def test_wait_for_returns_the_message_once_it_comes_and_none_once_stopped() -> None:
    receive, send = mp.Pipe(duplex=False)
    inbox = control.Inbox(receive)
    stop = threading.Event()
    sender = threading.Timer(0.2, control.send, (send, control.MODEL, "model"))
    sender.start()
    assert inbox.wait_for(control.MODEL, stop, step_s=0.05) == "model"
    stop.set()
    assert inbox.wait_for(control.STATS, stop) is None


def test_a_closed_pipe_ends_the_news_without_an_error() -> None:
    receive, send = mp.Pipe(duplex=False)
    inbox = control.Inbox(receive)
    control.send(send, control.MODEL, "last")
    send.close()
    assert inbox.poll(timeout=1) == {control.MODEL: "last"}
    assert inbox.poll(timeout=0.1) == {control.MODEL: "last"}


def test_sending_to_a_stage_that_is_gone_is_not_an_error() -> None:
    receive, send = mp.Pipe(duplex=False)
    receive.close()
    control.send(send, control.STATS, {})
