"""Library search as a task: which images of a library the image is (SPEC-libraries.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aerovision.tools import spec

Mode = Literal["auto", "duplicate", "object", "similar"]


class SearchParams(spec.ToolParams):
    library_id: str = Field(
        "", max_length=36, description="The library searched (one of the account's)."
    )
    mode: Mode = Field("auto", description="auto (duplicates, then verified objects, then "
                       "similar), duplicate, object or similar.")
    limit: int = Field(10, ge=1, le=100, description="Hits kept, 1–100.")
    offset: int = Field(0, ge=0, le=10_000, description="Hits skipped first.")
    min_score: float = Field(0.0, ge=0, le=1, description="Only hits scoring at least this.")
    tag: str | None = Field(None, max_length=64, description="Only images with this tag.")


def run(params: SearchParams, inputs: spec.Inputs, out: spec.Outputs) -> spec.RunResult:
    library = inputs.library(params.library_id)
    found = library.search(
        inputs.image("image"), mode=params.mode, limit=params.limit, offset=params.offset,
        min_score=params.min_score, tag=params.tag,
    )
    results = found["results"]
    best = results[0] if results else None
    data = {
        "library_id": params.library_id,
        **found,
        "hits": len(results),
        "found": sum(1 for hit in results if hit["match_type"] != "similar"),
        "best_match_type": None if best is None else best["match_type"],
        "best_score": None if best is None else best["score"],
    }
    return spec.RunResult([], data)


TOOL = spec.Tool(
    name="search",
    title="Library search",
    summary="Which images of a library this image is: duplicates, objects in it, similar ones.",
    docs="""Search the library `library_id` with `image`, as
    `POST /api/v1/libraries/{library_id}/search` does, as a task (webhooks, chains).

    When done, `result_data` holds the search's answer — `mode`, `has_more`,
    `results` (each hit's `image_id`, `score`, `match_type`, `brief`, `tags`,
    `contsign`, `external_id`, `thumbnail`, and for a verified hit `inliers`,
    `homography` and `polygon`) and `timings` — with `hits` (results on this page),
    `found` (those that are duplicates or objects), `best_match_type` and
    `best_score`. A library the account does not have is the task's error.
    """,
    inputs=(spec.InputSpec("image", "image", "The query image (PNG, JPEG, BMP, TIFF)."),),
    params=SearchParams,
    run=run,
    found_when={
        # at least one hit of the library (any kind: a similar image is a hit too)
        "hits": spec.Found("hits"),
        # the same picture or the object itself, geometrically verified
        "verified": spec.Found("found"),
    },
    result_line=spec.Summary("{hits#hit|hits}, best {best_match_type} {best_score:.3f}"),
    has_settings=False,
    pictures_on_demand=False,
    permission="libraries:view",
)
