"""Run the live daemon with a test-double detector: ``python -m tests.daemon.live_runner FACTORY ARGS…``.

FACTORY is ``bright`` (finds the synthetic video's rectangle), ``blobs``
(every rectangle of the scripted event videos is a person), ``region-blobs``
(the same, and it looks at regions of frames too), ``slow`` (the
same, a tenth of a second per call) or ``stuck`` (answers a few frames, then
hangs like a wedged GPU driver). ARGS are the
daemon's own command-line flags, parsed by its own parser. The command
line of ``detectord`` itself cannot reach these doubles.
"""

from __future__ import annotations

import logging
import sys

from detectord.daemon.cli import get_args_parser, live_config
from detectord.daemon.live import run_daemon
from detectord.daemon.logs import configure_logging

from .fakes import blob_factory, bright_box_factory, region_blob_factory, slow_factory, stuck_factory

FACTORIES = {
    "blobs": blob_factory,
    "region-blobs": region_blob_factory,
    "bright": bright_box_factory,
    "stuck": stuck_factory,
    "slow": slow_factory,
}


def main(argv: list[str]) -> int:
    factory = FACTORIES[argv[0]]
    args = get_args_parser().parse_args(argv[1:])
    configure_logging(logging.INFO)
    run_daemon(live_config(args), log_level=logging.INFO, detector_factory=factory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
