"""Pure computer-vision engine: arrays and numbers in, dataclasses out.

Nothing here imports from the rest of AeroVision, so every algorithm can be
called from a notebook without a server.
"""
