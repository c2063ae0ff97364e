from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from collections.abc import Iterator
from multiprocessing.context import SpawnContext

import pytest


@pytest.fixture
def ctx() -> SpawnContext:
    return mp.get_context("spawn")


@pytest.fixture
def instance() -> Iterator[str]:
    """A unique instance name; fails the test if any of its segments outlive it."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    leftovers = [f for f in os.listdir("/dev/shm") if f.startswith(f"detectord-{name}-")]
    assert not leftovers, f"segments left in /dev/shm: {leftovers}"
