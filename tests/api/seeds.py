"""The seed documents' template examples, copied verbatim (only the host is replaced).

Source: ../shared/seeds/001_5a9006190aa0eb3c.txt (template matching, "Примеры кода").
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

CURL_SUBMIT = """curl -X POST http://localhost:8888/api/v1/match/template \\
  -F "image=@screenshot.png" \\
  -F "template=@icon.png"
"""

CURL_SUBMIT_WITH_PARAMS = """curl -X POST http://localhost:8888/api/v1/match/template \\
  -F "image=@screenshot.png" \\
  -F "template=@icon.png" \\
  -F "method=TM_CCORR_NORMED" \\
  -F "threshold=0.9" \\
  -F "max_results=10" \\
  -F "use_grayscale=true"
"""

CURL_STATUS = "curl http://localhost:8888/api/v1/tasks/{uid}"

PYTHON = '''
import requests
import time
# ── Запрос: отправить изображения ──
files = {
    "image": open("screenshot.png", "rb"),
    "template": open("icon.png", "rb"),
}
data = {
    "method": "TM_CCOEFF_NORMED",
    "threshold": "0.8",
    "max_results": "20",
}
resp = requests.post(
    "http://localhost:8888/api/v1/match/template",
    files=files, data=data,
)
task = resp.json()
# ── Запрос: дождаться результата ──
while True:
    r = requests.get(f"http://localhost:8888/api/v1/tasks/{task['uid']}")
    status = r.json()
    if status["status"] in ("done", "error"):
        break
    time.sleep(1)
'''

JAVASCRIPT = """
const form = new FormData();
form.append("image", imageInput.files[0]);
form.append("template", templateInput.files[0]);
form.append("method", "TM_CCOEFF_NORMED");
form.append("threshold", "0.8");
const res = await fetch("/api/v1/match/template", {
  method: "POST",
  body: form,
});
const task = await res.json();
async function waitForResult(uid) {
  while (true) {
    const r = await fetch(`/api/v1/tasks/${uid}`);
    const data = await r.json();
    if (data.status === "done" || data.status === "error") return data;
    await new Promise(r => setTimeout(r, 1000));
  }
}
const result = await waitForResult(task.uid);
"""

SETTINGS_CURL_GET = "curl http://localhost:8888/api/v1/settings/template"

SETTINGS_CURL_PUT = """curl -X PUT http://localhost:8888/api/v1/settings/template \\
  -H "Content-Type: application/json" \\
  -d '{
    "method": "TM_CCOEFF_NORMED",
    "threshold": 0.9,
    "max_results": 10,
    "use_grayscale": true
  }'
"""


def run_fetch_example(
    code: str, *, base_url: str, cwd: Path, inputs: dict[str, str], result: str
) -> dict[str, Any]:
    """Run a seed's browser ``fetch`` example verbatim under Node.js.

    ``fetch`` resolves the example's relative URLs against ``base_url``; each name
    in ``inputs`` becomes an ``<input type=file>`` stand-in holding that file of
    ``cwd``; ``result`` is a JavaScript expression printed as JSON at the end.
    """
    files = "\n".join(
        f"const {name} = {{files: [file({json.dumps(path)})]}};" for name, path in inputs.items()
    )
    harness = (
        'const fs = require("fs");\n'
        f"const BASE = {json.dumps(base_url)};\n"
        "const nodeFetch = globalThis.fetch;\n"
        "globalThis.fetch = (url, init) => nodeFetch(new URL(url, BASE), init);\n"
        "const file = (name) => new File([fs.readFileSync(name)], name);\n"
        f"{files}\n(async () => {{\n{code}\nconsole.log(JSON.stringify({result}));\n}})()"
        ".catch((e) => { console.error(e); process.exit(1); });\n"
    )
    out = subprocess.run(["node", "-e", harness], cwd=cwd, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer
