"""Template matching: AeroVision's engine against the bare ``cv2.matchTemplate`` call.

Run ``python bench/bench_template.py`` for a table. The scene is a real photograph
(scikit-image's ``coffee``) resized to 1920x1080, with a 64x64 crop of another
photograph (``astronaut``) pasted three times and mild noise. Each row times, in
the same process and interleaved run by run (median of ``repeats``):

- baseline: ``cv2.matchTemplate(grey_image, grey_template, method)``;
- aerovision: ``match_template(grey_image, grey_template, method=...)`` with its
  defaults (threshold 0.8, 20 results, NMS), i.e. score map + threshold + NMS.

Both get the same grey arrays, converted outside the timed region, so the ratio is
the cost of everything AeroVision adds to the OpenCV call. One more row converts
BGR to grey inside both timed regions; the render row times ``draw_matches`` plus
``heatmap_image`` alone, as a ratio to the bare match. The goal is a ratio of at
most 1.3 for the matching call (the TM_CCOEFF_NORMED headline). At threshold 0.8
the permissive methods (TM_CCORR_NORMED, TM_SQDIFF_NORMED and the relative ones)
pass hundreds of thousands of pixels on a photograph, so their rows also pay for
one grey dilation of the score map (~2.5 ms) to find the local maxima.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import skimage.data

from aerovision.engine.render import draw_matches, heatmap_image
from aerovision.engine.template import METHODS, match_template
from bench.timing import median_pair, row

Image = npt.NDArray[np.uint8]
SIZE = (1920, 1080)
TEMPLATE_SIDE = 64
PASTES = ((150, 120), (900, 520), (1600, 880))


def build_scene(seed: int = 0) -> tuple[Image, Image]:
    """Return (scene BGR 1080x1920, template BGR 64x64) with the template pasted 3 times."""
    coffee = skimage.data.coffee()  # type: ignore[no-untyped-call]
    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    scene = cv2.resize(cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR), SIZE, interpolation=cv2.INTER_CUBIC)
    side = TEMPLATE_SIDE
    template = np.ascontiguousarray(
        cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)[100 : 100 + side, 200 : 200 + side],
        dtype=np.uint8,
    )
    out = np.asarray(scene, dtype=np.float32)
    for x, y in PASTES:
        out[y : y + side, x : x + side] = template
    out += np.random.default_rng(seed).normal(0.0, 3.0, size=out.shape).astype(np.float32)
    return np.asarray(np.clip(out + 0.5, 0, 255), dtype=np.uint8), template


def bench_engine(repeats: int = 15) -> list[dict[str, Any]]:
    """Time the engine against the bare OpenCV call; one row per measurement.

    Parameters
    ----------
    repeats : int
        Interleaved runs per row; the median is reported.

    Returns
    -------
    list of dict
        ``{"name", "baseline_ms", "aerovision_ms", "ratio", ...}``; the first row is
        the headline (TM_CCOEFF_NORMED, grey), then one row per method, the BGR row
        and the rendering row.
    """
    scene, template = build_scene()
    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    tgrey = cv2.cvtColor(template, cv2.COLOR_BGR2GRAY)
    label = f"{SIZE[0]}x{SIZE[1]} t{TEMPLATE_SIDE}"
    rows: list[dict[str, Any]] = []

    for method in ("TM_CCOEFF_NORMED", *METHODS):
        result = match_template(grey, tgrey, method=method)
        base, ours = median_pair(
            partial(cv2.matchTemplate, grey, tgrey, getattr(cv2, method)),
            partial(match_template, grey, tgrey, method=method),
            repeats,
        )
        rows.append(
            row(
                f"template {method} {label}",
                base,
                ours,
                note=f"grey in; threshold 0.8 + NMS; {result.filtered_matches} kept",
                filtered_matches=result.filtered_matches,
            )
        )
    rows.pop(1)  # TM_CCOEFF_NORMED ran twice: once as the headline, once in the sweep

    def bare_bgr() -> None:
        cv2.matchTemplate(
            cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY),
            cv2.cvtColor(template, cv2.COLOR_BGR2GRAY),
            cv2.TM_CCOEFF_NORMED,
        )

    base, ours = median_pair(bare_bgr, lambda: match_template(scene, template), repeats)
    rows.append(
        row(f"template TM_CCOEFF_NORMED {label} BGR", base, ours, note="BGR in, grey inside both")
    )

    result = match_template(grey, tgrey)

    def render() -> None:
        draw_matches(scene, result.matches)
        heatmap_image(result.score_map, scene.shape, template.shape)

    base, ours = median_pair(
        lambda: cv2.matchTemplate(grey, tgrey, cv2.TM_CCOEFF_NORMED), render, repeats
    )
    rows.append(
        row(
            f"render draw_matches+heatmap_image {label}",
            base,
            ours,
            note="rendering alone, as a ratio to the bare match",
        )
    )
    return rows


if __name__ == "__main__":
    table = bench_engine()
    width = max(len(r["name"]) for r in table)
    print(f"{'name':<{width}}  {'baseline ms':>11}  {'aerovision ms':>13}  {'ratio':>6}  note")
    for r in table:
        print(
            f"{r['name']:<{width}}  {r['baseline_ms']:>11.2f}  {r['aerovision_ms']:>13.2f}  "
            f"{r['ratio']:>6.3f}  {r.get('note', '')}"
        )
