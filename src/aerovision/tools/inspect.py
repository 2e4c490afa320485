"""Inspect: one image described (size, channels, colour statistics, sharpness)."""

from __future__ import annotations

from pydantic import Field

from aerovision.engine.inspect import histogram_picture, inspect_image
from aerovision.tools import spec


class InspectParams(spec.ToolParams):
    bins: int = Field(32, ge=2, le=256, description="Histogram bins per channel, 2–256.")


def run(params: InspectParams, inputs: spec.Inputs, out: spec.Outputs) -> spec.RunResult:
    result = inspect_image(inputs.image("image"), bins=params.bins)
    picture = out.picture("histogram.png", lambda: histogram_picture(result))
    return spec.RunResult([picture], result.summary())


TOOL = spec.Tool(
    name="inspect",
    title="Inspect an image",
    summary="Describe one image: size, channels, colour statistics, sharpness, histogram.",
    docs="""Describe `image`: its size and channels, each channel's mean, standard deviation,
    range and histogram, and the grayscale brightness, contrast and sharpness (variance of
    the Laplacian: a blurred image scores near 0).

    When done, `result_files` holds `results/<uid>/histogram.png` and `result_data`
    holds `width`, `height`, `channels`, `brightness`, `contrast`, `sharpness` and
    `channel_stats` (`name`, `mean`, `std`, `min`, `max`, `histogram` per channel).
    """,
    inputs=(spec.InputSpec("image", "image", "The image to describe (PNG, JPEG, BMP, TIFF)."),),
    params=InspectParams,
    run=run,
    found_when={"described": spec.Found("width")},
    result_line=spec.Summary(
        "{width}×{height}, {channels#channel|channels}, brightness {brightness:.1f}, "
        "sharpness {sharpness:.4g}"
    ),
    presets=(
        spec.Preset("Coarse histogram", "A quick look: 16 bins per channel.", {"bins": 16}),
        spec.Preset("Fine histogram", "Every grey level: 256 bins per channel.", {"bins": 256}),
    ),
    chainable=False,
)
