"""The progress bar draws on a terminal and stays silent elsewhere."""

from __future__ import annotations

import io

from detectord.daemon.cli.progress import Progress


def test_progress_shows_frames_fps_and_eta_when_enabled() -> None:
    stream = io.StringIO()
    bar = Progress(100, enabled=True, stream=stream)
    bar.update(25, elapsed_s=10.0, fps=2.5)
    text = stream.getvalue()
    assert "25/100 frames" in text and "2.50 fps" in text and "ETA 0:00:30" in text
    bar.close()
    assert stream.getvalue().endswith("\r")


def test_progress_is_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress(100, stream=stream)
    bar.update(25, elapsed_s=10.0, fps=2.5)
    bar.close()
    assert stream.getvalue() == ""
