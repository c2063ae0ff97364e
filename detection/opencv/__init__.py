"""Detectors OpenCV runs: no torch, no download."""
