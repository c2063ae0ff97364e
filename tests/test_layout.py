"""Small modules, one concept each: a production module that outgrows 400 lines is split by concept."""

from __future__ import annotations

from tests.test_imports import REPO, _modules

MOST_LINES = 400


def test_no_production_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}, f"split these by concept: {long}"
