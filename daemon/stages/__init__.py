"""The stage processes: what runs in each (capture, inference, publish, the offline writer).

Each ``run_*`` function is a process entry point that the supervisor spawns
through ``pipeline.stage.run_stage``; it attaches the rings from handles,
works until its stream ends or its stop event is set, and releases what it
holds on every exit path.
"""
