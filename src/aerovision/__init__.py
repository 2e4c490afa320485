"""AeroVision: image and 3D surface matching as a service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aerovision")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

API_VERSION = "v1"
