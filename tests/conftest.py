from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .mqtt import Mosquitto, Subscriber


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, for this test only."""
    mosquitto = Mosquitto(tmp_path)
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
def subscriber(broker: Mosquitto) -> Iterator[Subscriber]:
    """A client of that broker that keeps every message it receives (topic ``#``)."""
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


BENCH = Path(__file__).resolve().parent / "bench"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tier, beside the tests marked one by one: every benchmark's smoke run and every test that drives
    a real browser (``pytest -m "not slow"`` is the quick tier)."""
    for item in items:
        if Path(str(item.path)).is_relative_to(BENCH) or "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
