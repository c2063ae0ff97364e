"""``detectord``: the supervisor, the stage processes, sources, configuration and the CLI.

Wires ``detectord.detection`` (models) to ``detectord.ipc`` (shared memory).
"""

import os

# FFmpeg inside OpenCV writes its own lines to stderr ("moov atom not found")
# next to ours; every error it reports reaches the user through our messages.
# Set before the first capture is opened; an explicit environment wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
