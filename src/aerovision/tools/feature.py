"""Feature matching: keypoints of one photo in another, and where it is (homography)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aerovision.engine import render
from aerovision.engine.feature import match_features
from aerovision.tools import spec

Detector = Literal["SIFT", "ORB", "AKAZE", "BRISK"]
Matcher = Literal["FLANN", "BFMatcher"]


class FeatureParams(spec.ToolParams):
    detector: Detector = Field("SIFT", description="Keypoint detector: SIFT, ORB, AKAZE, BRISK.")
    matcher: Matcher = Field("FLANN", description="Descriptor matcher: FLANN or BFMatcher.")
    ratio_threshold: float = Field(
        0.75,
        ge=0.1,
        le=1.0,
        description="Lowe's ratio test threshold, 0.1–1.0; lower is stricter.",
    )
    max_matches: int = Field(
        200, ge=1, le=5000, description="Most good matches kept (by distance), 1–5000."
    )


def run(params: FeatureParams, inputs: spec.Inputs, out: spec.Outputs) -> spec.RunResult:
    query, train = inputs.image("query_image"), inputs.image("train_image")
    result = match_features(query, train, **params.model_dump())
    picture = out.picture(
        "matches.png", lambda: render.draw_feature_matches(query, train, result)
    )
    return spec.RunResult([picture], result.summary())


TOOL = spec.Tool(
    name="feature",
    title="Feature matching",
    summary="Match keypoints between two images (SIFT/ORB/AKAZE/BRISK, FLANN/BFMatcher).",
    docs="""Match keypoints of `query_image` in `train_image` and locate it (homography).

    When done, `result_files` holds `results/<uid>/matches.png` and `result_data`
    holds `query_keypoints`, `train_keypoints`, `good_matches`, `detector`,
    `matcher`, and the geometry: `found` (true only when the geometry is
    consistent), and only then `homography` (3×3, query → train), `corners` (the
    query's outline in the train image) and `center` (null when not found);
    `inliers` and `inlier_ratio` describe the best fit, even a rejected one.
    """,
    inputs=(
        spec.InputSpec("query_image", "image", "Image searched for (PNG, JPEG, BMP, TIFF)."),
        spec.InputSpec("train_image", "image", "Reference image (PNG, JPEG, BMP, TIFF)."),
    ),
    params=FeatureParams,
    run=run,
    found_when={
        # the seed's rule: any pair passed the ratio test, even without a consistent geometry
        "good_matches": spec.Found("good_matches"),
        # the object is really there: a homography with enough inliers and a sane outline
        "homography": spec.Found("found", equals=True),
    },
    result_line=spec.Summary("{good_matches#good match|good matches}"),
    presets=(
        spec.Preset("Panorama stitching", "High precision: false pairs distort a panorama.",
               {"detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.7}),
        spec.Preset("Object on a scene", "More matches allowed; the homography filters them.",
               {"detector": "ORB", "matcher": "BFMatcher", "ratio_threshold": 0.75}),
        spec.Preset("Fast rough comparison", "Speed over precision: pre-filtering, batches.",
               {"detector": "BRISK", "matcher": "BFMatcher", "ratio_threshold": 0.8}),
        spec.Preset("Maximum precision", "Measurement, stereo, calibration: drops doubtful pairs.",
               {"detector": "SIFT", "matcher": "FLANN", "ratio_threshold": 0.6}),
    ),
)
