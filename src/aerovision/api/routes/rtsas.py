"""The similar-image search seed's wire format (seeds/002, SPEC-libraries.md):
``/RTSAsService/signup|add|update|search|remove|snapshot`` and
``/GeneralClassifyService/classify``, over the same libraries as the native API.

Every answer is HTTP 200 with the seed's ``err_no``/``err_msg`` (and ``logid`` echoed),
except a body that is not JSON at all (400, ``err_no`` 1). ``appid`` + ``sub_lib``
name a library of the caller's account. Images and ``fea_data`` are base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from aerovision.api.auth import CallerDep
from aerovision.api.deps import ServicesDep
from aerovision.api.services import Services
from aerovision.engine import retrieval
from aerovision.engine.errors import InputError
from aerovision.libraries import service as libs
from aerovision.store import libraries as store
from aerovision.store.files import StoreUnavailable
from aerovision.store.scope import Owner

router = APIRouter(tags=["wire format (seed 002)"])

PREFIXES = ("/RTSAsService/", "/GeneralClassifyService/")

OK, BAD_PARAMS, INTERNAL, AUTH_FAILED, BUSY = 0, 1, 11, 12, 99
IMAGE_UNUSABLE, DUPLICATED, NOT_IN_TABLE, NOT_SIGNED_UP, SIGNED_UP = 100, 101, 102, 103, 104

BRIEF_FEATURE = 1000
MAX_RN = 100


class WireError(Exception):
    def __init__(self, err_no: int, err_msg: str, **extra: Any) -> None:
        super().__init__(err_msg)
        self.err_no = err_no
        self.err_msg = err_msg
        self.extra = extra


def is_wire_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def auth_failed(detail: str, logid: Any = None) -> JSONResponse:
    """What a wire-format request without usable credentials gets (err_no 12)."""
    return JSONResponse(_body(AUTH_FAILED, f"authentication failed: {detail}", logid))


def _body(err_no: int, err_msg: str, logid: Any, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"err_no": err_no, "err_msg": err_msg, **extra}
    if logid is not None:
        body["logid"] = logid
    return body


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise WireError(BAD_PARAMS, f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(BAD_PARAMS, f"{what} is not valid base64") from None


def _library_name(body: dict[str, Any]) -> str:
    appid = body.get("appid")
    if appid is None or appid == "":
        raise WireError(BAD_PARAMS, "appid is required")
    if not isinstance(appid, (str, int)) or isinstance(appid, bool):
        raise WireError(BAD_PARAMS, "appid must be a string")
    sub_lib = body.get("sub_lib") or ""
    if not isinstance(sub_lib, (str, int)) or isinstance(sub_lib, bool):
        raise WireError(BAD_PARAMS, "sub_lib must be a string")
    name = f"{appid}{sub_lib}"
    try:
        return libs.check_name(name)
    except libs.BadRequest:
        raise WireError(BAD_PARAMS, "appid (with sub_lib): 1-64 characters of A-Z, a-z, 0-9, "
                                    "'_', '.' and '-'") from None


def _library(services: Services, owner: Owner, body: dict[str, Any]) -> store.Library:
    library = store.library_by_name(services.db, owner, _library_name(body))
    if library is None:
        raise WireError(NOT_SIGNED_UP, "appid is not signed up")
    return library


def _brief(body: dict[str, Any], *, required: bool) -> str | None:
    """The fea_id 1000 payload (else the top-level ``brief``), as text."""
    features = body.get("features")
    if features is not None and not isinstance(features, list):
        raise WireError(BAD_PARAMS, "features must be a list of {fea_id, fea_data}")
    for item in features or []:
        if not isinstance(item, dict) or "fea_id" not in item:
            raise WireError(BAD_PARAMS, "features must be a list of {fea_id, fea_data}")
        data = _b64(item.get("fea_data", ""), f"fea_data of fea_id {item['fea_id']}")
        if item["fea_id"] == BRIEF_FEATURE:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(BAD_PARAMS, "the brief (fea_id 1000) is not UTF-8 text") \
                    from None
            return _checked(text)
    brief = body.get("brief")
    if brief is not None:
        if not isinstance(brief, str):
            raise WireError(BAD_PARAMS, "brief must be a string")
        return _checked(brief)
    if required:
        raise WireError(BAD_PARAMS, "features must carry the brief as fea_id 1000")
    return None


def _checked(brief: str) -> str:
    try:
        return libs.check_brief(brief)
    except libs.BadRequest as exc:
        raise WireError(BAD_PARAMS, str(exc)) from None


def _features(image: store.Image) -> list[dict[str, Any]]:
    return [{"fea_id": BRIEF_FEATURE,
             "fea_data": base64.b64encode(image.brief.encode()).decode()}]


def _parse_contsign(value: Any) -> int:
    if not isinstance(value, dict):
        raise WireError(BAD_PARAMS, "a contsign is {\"sign1\": uint32, \"sign2\": uint32}")
    try:
        sign1, sign2 = value["sign1"], value["sign2"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (sign1, sign2)):
            raise TypeError
        return retrieval.to_signed(retrieval.join_contsign(sign1, sign2))
    except (KeyError, TypeError, InputError):
        raise WireError(BAD_PARAMS, "a contsign is {\"sign1\": uint32, \"sign2\": uint32}") \
            from None


def _image_bytes(body: dict[str, Any], *, required: bool = True) -> bytes | None:
    if body.get("image") in (None, ""):
        if body.get("data") not in (None, ""):
            raise WireError(BAD_PARAMS, "send the image as `image` (base64): the protobuf "
                                        "`data` field is not supported")
        if required:
            raise WireError(IMAGE_UNUSABLE, "image is empty (216200)")
        return None
    fmt = body.get("format")
    if fmt not in (None, "json"):
        raise WireError(BAD_PARAMS, "format must be \"json\" (images in base64)")
    data = _b64(body["image"], "image")
    if not data:
        raise WireError(IMAGE_UNUSABLE, "image is empty (216200)")
    return data


def _refused(refused: libs.Refused) -> WireError:
    if refused.status == 409 and refused.existing is not None:
        return WireError(DUPLICATED, "duplicated add", data_items=[{
            "contsign": libs.contsign_json(refused.existing),
            "features": _features(refused.existing),
        }])
    if refused.code is not None:
        return WireError(IMAGE_UNUSABLE, f"image could not be used ({refused.code}: "
                                         f"{refused.detail})")
    return WireError(BAD_PARAMS, refused.detail)


async def _described(services: Services, data: bytes) -> retrieval.Description:
    """The image's signature and global descriptor (no keypoints), as a library keeps them."""
    query = await run_in_threadpool(services.libraries.describe_query, data, "duplicate", False)
    if isinstance(query, libs.Refused):
        raise _refused(query)
    return query


async def _contsign_of(services: Services, data: bytes) -> int:
    return retrieval.to_signed((await _described(services, data)).contsign)


REQUEST_SCHEMA: dict[str, Any] = {
    "description": "A JSON object, as the seed has it (SPEC-libraries.md): `appid` (+ "
    "`sub_lib`) names the library; `logid` is echoed; `format`: \"json\" (images and "
    "`fea_data` in base64); `image`; `brief`; `features`: [{`fea_id`, `fea_data`}], fea_id "
    "1000 the brief; `contsign` {`sign1`, `sign2`} or `contsigns` (remove); `pn`, `rn` "
    "(search). Anything else in it is answered with err_no 1, in a 200, as the seed does.",
}

Handler = Callable[[Services, Owner, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _signup(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    name = _library_name(body)
    try:
        await run_in_threadpool(store.create_library, services.db, owner, name, "")
    except store.NameTaken:
        raise WireError(SIGNED_UP, "appid is already signed up") from None
    return {}


async def _add(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    library = await run_in_threadpool(_library, services, owner, body)
    brief = _brief(body, required=False) or ""
    data = _image_bytes(body)
    assert data is not None
    added = await run_in_threadpool(partial(
        services.libraries.add, owner, library.library_id, data, brief=brief, tags=[],
        external_id=None, dedup="exact",
    ))
    if added is None:
        raise WireError(NOT_SIGNED_UP, "appid is not signed up")
    if isinstance(added, libs.Refused):
        raise _refused(added)
    return {"data_items": [{"contsign": libs.contsign_json(added)}]}


async def _update(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    library = await run_in_threadpool(_library, services, owner, body)
    brief = _brief(body, required=True)
    data = _image_bytes(body, required=False)
    if data is not None:
        sign = await _contsign_of(services, data)
    elif body.get("contsign") is not None:
        sign = _parse_contsign(body["contsign"])
    else:
        raise WireError(BAD_PARAMS, "update needs image or contsign")
    changed = await run_in_threadpool(
        store.update_image, services.db, owner, library.library_id, "", brief=brief,
        by_contsign=sign,
    )
    if not changed:
        raise WireError(NOT_IN_TABLE, "the entry is not in the library")
    return {}


async def _search(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    library = await run_in_threadpool(_library, services, owner, body)
    pn, rn = body.get("pn", 0), body.get("rn", 10)
    for name, value, top in (("pn", pn, 10_000), ("rn", rn, MAX_RN)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise WireError(BAD_PARAMS, f"{name} must be an integer 0-{top}")
    data = _image_bytes(body)
    assert data is not None
    if rn == 0:
        return {"data_items": [], "has_more": 0}
    found = await run_in_threadpool(partial(
        services.libraries.search, library.library_id, data, mode="auto", limit=rn, offset=pn,
    ))
    if found is None:
        raise WireError(NOT_SIGNED_UP, "appid is not signed up")
    if isinstance(found, libs.Refused):
        raise _refused(found)
    return {
        "data_items": [
            {"contsign": libs.contsign_json(hit.image), "score": hit.score,
             "features": _features(hit.image)}
            for hit in found.hits
        ],
        "has_more": int(found.has_more),
    }


async def _remove(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    library = await run_in_threadpool(_library, services, owner, body)
    many = body.get("contsigns")
    if many is not None and not isinstance(many, list):
        raise WireError(BAD_PARAMS, "contsigns must be a list of contsigns")
    if many:
        signs = [_parse_contsign(item) for item in many]
    elif body.get("contsign") is not None:
        signs = [_parse_contsign(body["contsign"])]
    else:
        data = _image_bytes(body, required=False)
        if data is None:
            raise WireError(BAD_PARAMS, "remove needs contsign, contsigns or image")
        signs = [await _contsign_of(services, data)]
    removed = 0
    for sign in dict.fromkeys(signs):
        gone = await run_in_threadpool(
            services.libraries.remove_images, owner, library.library_id, contsign=sign
        )
        removed += len(gone)
    if not removed:
        raise WireError(NOT_IN_TABLE, "the entry is not in the library")
    return {}


async def _snapshot(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    library = await run_in_threadpool(_library, services, owner, body)
    return {"snapshot": {"tag": 0, "index_size": library.image_count, "index_capacity": 0,
                         "queue_size": 0}}


async def _classify(services: Services, owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    await run_in_threadpool(_library, services, owner, body)
    data = _image_bytes(body)
    assert data is not None
    query = await _described(services, data)
    vector = base64.b64encode(query.vector.astype("<f4").tobytes()).decode()
    return {"features": [{"fea_id": 1, "fea_data": vector}]}


HANDLERS: dict[str, Handler] = {
    "/RTSAsService/signup": _signup,
    "/RTSAsService/add": _add,
    "/RTSAsService/update": _update,
    "/RTSAsService/search": _search,
    "/RTSAsService/remove": _remove,
    "/RTSAsService/snapshot": _snapshot,
    "/GeneralClassifyService/classify": _classify,
}
"""Each path's handler (api/auth.py says what each needs)."""


def _route(path: str, handler: Handler) -> None:
    async def endpoint(request: Request, services: ServicesDep, caller: CallerDep) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(_body(BAD_PARAMS, "the body is not JSON", None), status_code=400)
        if not isinstance(body, dict):
            return JSONResponse(_body(BAD_PARAMS, "the body is not a JSON object", None))
        logid = body.get("logid")
        try:
            extra = await handler(services, caller.owner(read=False), body)
        except WireError as exc:
            return JSONResponse(_body(exc.err_no, exc.err_msg, logid, **exc.extra))
        except StoreUnavailable as exc:
            return JSONResponse(_body(BUSY, f"{exc}; try again later", logid))
        except HTTPException as exc:
            return JSONResponse(_body(BAD_PARAMS, str(exc.detail), logid))
        return JSONResponse(_body(OK, "OK", logid, **extra))

    name = path.rsplit("/", 1)[1]
    endpoint.__name__ = f"wire_{name}"
    endpoint.__doc__ = (handler.__doc__ or "") + f"The seed's `{path}` (SPEC-libraries.md)."
    router.post(
        path, summary=f"{path} (seed wire format)", response_class=JSONResponse,
        responses={200: {"description": "The outcome: err_no (0 OK), err_msg, logid, and the "
                         "operation's fields."},
                   400: {"description": "The body is not JSON: err_no 1."}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": REQUEST_SCHEMA}}}},
    )(endpoint)


for _path, _handler in HANDLERS.items():
    _route(_path, _handler)
