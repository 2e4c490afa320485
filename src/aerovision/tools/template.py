"""Template matching: every occurrence of a small image in a larger one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aerovision.engine import render
from aerovision.engine.template import match_template
from aerovision.tools import spec

TemplateMethod = Literal[
    "TM_CCOEFF_NORMED",
    "TM_CCORR_NORMED",
    "TM_SQDIFF_NORMED",
    "TM_CCOEFF",
    "TM_CCORR",
    "TM_SQDIFF",
]


class TemplateParams(spec.ToolParams):
    method: TemplateMethod = Field(
        "TM_CCOEFF_NORMED",
        description="cv2.matchTemplate method. The *_NORMED methods give absolute scores in "
        "0–1; the others are normalised to 0–1 over each response map.",
    )
    threshold: float = Field(
        0.8,
        ge=0.1,
        le=1.0,
        description="Minimum score of a match, 0.1–1.0; higher is stricter.",
    )
    max_results: int = Field(
        20, ge=1, le=1000, description="Most matches returned, 1–1000 (best first)."
    )
    use_grayscale: bool = Field(
        True, description="Convert both images to grayscale first; false matches on colour."
    )


def run(params: TemplateParams, inputs: spec.Inputs, out: spec.Outputs) -> spec.RunResult:
    image, template = inputs.image("image"), inputs.image("template")
    result = match_template(image, template, **params.model_dump())
    matches = out.picture("matches.png", lambda: render.draw_matches(image, result.matches))
    heatmap = out.picture(
        "heatmap.png",
        lambda: render.heatmap_image(result.score_map, image.shape, template.shape),
    )
    return spec.RunResult([matches, heatmap], result.summary())


TOOL = spec.Tool(
    name="template",
    title="Template matching",
    summary="Find every occurrence of a template in an image (sliding window, NMS, heat map).",
    docs="""Find every occurrence of `template` in `image` (cv2.matchTemplate, NMS, heat map).

    Returns the queued task (201). When done, `result_files` holds
    `results/<uid>/matches.png` and `results/<uid>/heatmap.png`, and
    `result_data` holds `method`, `matches_found`, `best_score`,
    `filtered_matches`, `score_mode` and `matches` (best first).
    """,
    inputs=(
        spec.InputSpec("image", "image", "Target image (PNG, JPEG, BMP, TIFF)."),
        spec.InputSpec(
            "template",
            "image",
            "Template to find (PNG, JPEG, BMP, TIFF); a PNG's transparent pixels are ignored.",
        ),
    ),
    params=TemplateParams,
    run=run,
    found_when={"matches": spec.Found("filtered_matches")},
    result_line=spec.Summary("{filtered_matches#match|matches}, best score {best_score:.4g}"),
    presets=(
        spec.Preset(
            "Icon on a screenshot",
            "Exact pixel search; a high threshold for a single match.",
            {"method": "TM_CCOEFF_NORMED", "threshold": 0.9, "use_grayscale": True},
        ),
        spec.Preset(
            "Multi-detection",
            "Every copy of an object; a medium threshold plus NMS.",
            {"method": "TM_CCOEFF_NORMED", "threshold": 0.8, "max_results": 50},
        ),
        spec.Preset(
            "Colour search",
            "When colour matters: no grayscale conversion.",
            {"method": "TM_CCOEFF_NORMED", "threshold": 0.8, "use_grayscale": False},
        ),
        spec.Preset(
            "Visual QC",
            "Is the element there? A strict threshold.",
            {"method": "TM_CCOEFF_NORMED", "threshold": 0.95},
        ),
    ),
)
