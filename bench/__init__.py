"""Benchmarks: AeroVision against the bare OpenCV call, side by side in one run."""
