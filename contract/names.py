"""The rule for names that become topic levels: cameras now, zones later.

A name is one MQTT topic level and part of a shared-memory segment name, so it
holds no ``/``, no wildcard and no space, and starts with a letter or digit.
"""

from __future__ import annotations

import re

NAME_RULE = "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def check_name(name: object, what: str = "camera") -> str:
    """``name`` if it follows the rule; otherwise ValueError saying which ``what`` is wrong and why."""
    if not is_valid_name(name):
        raise ValueError(f"{what} {name!r}: {NAME_RULE}")
    assert isinstance(name, str)
    return name
