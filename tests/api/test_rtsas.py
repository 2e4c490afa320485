"""The similar-image search seed's wire format (seeds/002): its own example script,
ported to Python 3, against the server; and its error codes for bad requests."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests import library_truth as truth
from tests.api import seed002_example as seed
from tests.api.conftest import serve_for_module
from tests.server import ServeProcess


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "rtsas", workers=0) as proc:
        yield proc


def _run(api: ServeProcess, function: str, *args: str) -> dict[str, Any]:
    """One function of the seed's script, as its command line runs it; its printed answer."""
    seed.AS_SERVER = api.url("").rstrip("/")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        getattr(seed, function)(*args)
    answer: dict[str, Any] = json.loads(printed.getvalue())
    return answer


def _post(api: ServeProcess, path: str, body: Any) -> dict[str, Any]:
    answer = requests.post(api.url(path), data=json.dumps(body), timeout=60)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_seeds_example_script_works_unchanged(api: ServeProcess, tmp_path: Path) -> None:
    photos = truth.library_images()
    here = os.getcwd()
    os.chdir(tmp_path)  # the script reads query.jpg from where it runs
    try:
        Path("query.jpg").write_bytes(truth.encode(photos[0][1], ".jpg"))
        assert _run(api, "signup") == {"err_no": 0, "err_msg": "OK", "logid": 666}
        assert _run(api, "signup")["err_no"] == 104
        added = _run(api, "rts_as_add")
        assert added["err_no"] == 0 and added["err_msg"] == "OK" and added["logid"] == 666
        contsign = added["data_items"][0]["contsign"]
        assert set(contsign) == {"sign1", "sign2"}
        again = _run(api, "rts_as_add")
        assert again["err_no"] == 101 and again["err_msg"] == "duplicated add"
        assert again["data_items"] == [{"contsign": contsign, "features": [
            {"fea_id": 1000, "fea_data": _b64(b"addtest")}]}]
        # a second image, under another brief
        other = Path("other.jpg")
        other.write_bytes(truth.encode(photos[1][1], ".jpg"))
        assert _run(api, "rts_as_add", str(other))["err_no"] == 0

        found = _run(api, "rts_as_search")
        assert found["err_no"] == 0 and found["has_more"] == 0 and found["logid"] == 44
        assert [item["contsign"] for item in found["data_items"]][0] == contsign
        assert found["data_items"][0]["features"] == [
            {"fea_id": 1000, "fea_data": _b64(b"addtest")}]
        assert found["data_items"][0]["score"] > found["data_items"][1]["score"]
        assert len(found["data_items"]) == 2

        assert _run(api, "rts_as_update") == {"err_no": 0, "err_msg": "OK", "logid": 666}
        assert _run(api, "rts_as_snapshot")["snapshot"] == {
            "tag": 0, "index_size": 2, "index_capacity": 0, "queue_size": 0}
        sign = f"{contsign['sign1']},{contsign['sign2']}"
        assert _run(api, "rts_as_delete", sign)["err_no"] == 0
        assert _run(api, "rts_as_delete", sign)["err_no"] == 102
        assert _run(api, "rts_as_update")["err_no"] == 102
        assert _run(api, "rts_as_snapshot")["snapshot"]["index_size"] == 1
    finally:
        os.chdir(here)


def test_the_wire_format_and_the_native_api_see_the_same_library(api: ServeProcess) -> None:
    assert _post(api, "/RTSAsService/signup", {"appid": "shop", "sub_lib": "_1"})["err_no"] == 0
    listed = requests.get(api.url("/api/v1/libraries"), timeout=10).json()["libraries"]
    library = next(lib for lib in listed if lib["name"] == "shop_1")
    image = truth.library_images()[2][1]
    brief = "红色 bolt"
    added = _post(api, "/RTSAsService/add", {
        "appid": "shop", "sub_lib": "_1", "format": "json", "image": _b64(truth.encode(image)),
        "features": [{"fea_id": 1000, "fea_data": _b64(brief.encode())},
                     {"fea_id": 999, "fea_data": _b64(struct.pack("II", 0, 4))}],
    })
    assert added["err_no"] == 0
    native = requests.get(api.url(f"/api/v1/libraries/{library['library_id']}/images"),
                          timeout=10).json()["images"]
    assert [(i["brief"], i["contsign"]) for i in native] == [
        (brief, added["data_items"][0]["contsign"])]
    classified = _post(api, "/GeneralClassifyService/classify",
                       {"appid": "shop_1", "image": _b64(truth.encode(image))})
    vector = np.frombuffer(base64.b64decode(classified["features"][0]["fea_data"]), "<f4")
    assert classified["err_no"] == 0 and vector.shape == (192,)
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    removed = _post(api, "/RTSAsService/remove", {"appid": "shop_1", "contsigns": [
        added["data_items"][0]["contsign"]]})
    assert removed["err_no"] == 0
    assert requests.get(api.url(f"/api/v1/libraries/{library['library_id']}"),
                        timeout=10).json()["image_count"] == 0


@pytest.mark.parametrize(("path", "body", "err_no", "message"), [
    ("/RTSAsService/add", {"image": "aGVsbG8="}, 1, "appid is required"),
    ("/RTSAsService/search", {"appid": "nobody", "image": "aGVsbG8="}, 103,
     "appid is not signed up"),
    ("/RTSAsService/search", {"appid": "bad", "image": "not base64!"}, 1,
     "image is not valid base64"),
    ("/RTSAsService/search", {"appid": "bad", "image": _b64(b"hello")}, 100, "216201"),
    ("/RTSAsService/search", {"appid": "bad", "image": ""}, 100, "216200"),
    ("/RTSAsService/search", {"appid": "bad", "image": "aGVsbG8=", "rn": 101}, 1, "rn"),
    ("/RTSAsService/add", {"appid": "bad", "image": _b64(b"x"), "features": [
        {"fea_id": 1000, "fea_data": "%%%"}]}, 1, "fea_data of fea_id 1000"),
    ("/RTSAsService/remove", {"appid": "bad"}, 1, "contsign"),
    ("/RTSAsService/remove", {"appid": "bad", "contsign": {"sign1": -1, "sign2": 0}}, 1,
     "contsign"),
    ("/RTSAsService/signup", {"appid": "a,b"}, 1, "appid"),
    ("/RTSAsService/signup", ["appid"], 1, "JSON object"),
])
def test_bad_requests_get_the_seeds_error_codes(
    api: ServeProcess, path: str, body: Any, err_no: int, message: str
) -> None:
    _post(api, "/RTSAsService/signup", {"appid": "bad"})
    answer = _post(api, path, body)
    assert answer["err_no"] == err_no, answer
    assert message in answer["err_msg"], answer


def test_a_body_that_is_not_json_is_a_400_with_err_no_1(api: ServeProcess) -> None:
    answer = requests.post(api.url("/RTSAsService/search"), data=b"\xff{not json", timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"err_no": 1, "err_msg": "the body is not JSON"}
