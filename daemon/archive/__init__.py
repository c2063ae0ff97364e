"""``detectord analyze`` over many videos: which ones (``inputs``), what was done (``manifest``), and the runner
that does the rest on this machine's cores (``local``)."""
