"""A user-supplied ONNX image-embedding model, for semantic ``similar`` searches.

The model takes one image as a float32 tensor ``(1, 3, size, size)`` — RGB, scaled
to 0–1, then ``(x - mean) / std`` per channel — and gives one vector (any shape whose
elements are the embedding, e.g. ``(1, 512)``). :class:`Embedder` resizes an image
to ``size`` × ``size`` (area averaging, the whole image squeezed: nothing cropped),
runs the model on the CPU and returns the unit-length vector. ``onnxruntime`` is the
``embedder`` extra (``pip install 'aerovision[embedder]'``); no model is downloaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EmbedderUnavailable(RuntimeError):
    """The configured model cannot be used (missing, not ONNX, onnxruntime absent)."""


def fingerprint(path: Path) -> str:
    """What names a model: the first 16 hex digits of its file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


@dataclass
class Embedder:
    path: Path
    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    name: str = ""
    _session: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            import onnxruntime  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:
            raise EmbedderUnavailable(
                "AEROVISION_EMBEDDER_MODEL needs onnxruntime: pip install 'aerovision[embedder]'"
            ) from exc
        if not self.path.is_file():
            raise EmbedderUnavailable(f"the embedding model {self.path.name} does not exist")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one per describing process: they run side by side
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise EmbedderUnavailable(
                f"the embedding model {self.path.name} could not be loaded: {exc}"
            ) from exc
        self.name = self.name or fingerprint(self.path)
        self._input = self._session.get_inputs()[0].name

    def embed(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The unit-length embedding of a grey, BGR or BGRA image."""
        if image.ndim == 2:
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        x = (small.astype(np.float32) / np.float32(255.0) - mean) / std
        tensor = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        try:
            output = self._session.run(None, {self._input: tensor})[0]
        except Exception as exc:
            raise InputError(f"the embedding model failed on the image: {exc}") from exc
        vector = np.asarray(output, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise InputError("the embedding model gave a zero or non-finite vector")
        return np.asarray(vector / norm, dtype=np.float32)
