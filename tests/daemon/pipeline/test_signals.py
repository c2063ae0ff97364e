"""Stop signals set the stop event however often they come and whatever the main thread is doing."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

from detectord.daemon.pipeline.signals import stop_signals

WAITER = """
import signal
import sys
from detectord.daemon.pipeline.signals import stop_signals
with stop_signals(signal.SIGTERM) as stop:
    print("READY", flush=True)
    while not stop.wait(0):  # inside the event's lock most of the time
        pass
    print("STOPPED", flush=True)
    sys.stdin.read()  # the handler stays until the test has sent every signal
"""


def test_a_burst_of_sigterms_while_the_main_thread_waits_on_the_event_stops_the_process() -> None:
    """A handler that set the event itself could interrupt the main thread inside that event's lock and wait
    for it forever (a stage hung so after a double SIGTERM)."""
    process = subprocess.Popen([sys.executable, "-c", WAITER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "READY\n"
        for _ in range(300):
            os.kill(process.pid, signal.SIGTERM)
        assert select.select([process.stdout], [], [], 30)[0], "the event was never set: the process hangs"
        assert process.stdout.readline() == "STOPPED\n"
        process.stdin.close()
        assert process.wait(10) == 0
    finally:
        process.kill()


def test_the_event_is_set_by_the_signal_and_the_earlier_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with stop_signals(signal.SIGUSR1) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.wait(10)
    assert signal.getsignal(signal.SIGUSR1) is before
