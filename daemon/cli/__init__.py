"""The command line and what sits beside it: configuration loading, the demo, the systemd installer.

``main`` is the ``detectord`` command; ``parser`` its options; ``loading`` the
one path from TOML and flags to the typed configuration of ``detectord.daemon.config``.
"""

from .main import live_config
from .parser import get_args_parser

__all__ = ["get_args_parser", "live_config"]
