"""Running a pipeline of stage processes: supervision, rings, telemetry, systemd notification.

Knows how stages are started, watched, restarted and stopped, and how their
reports become statistics; not what a stage does (that is ``stages/``) nor
which stages a job has (``analyze.py``, ``live.py``).
"""
