"""The seed documents' template examples, copied verbatim (only the host is replaced).

Source: ../shared/seeds/001_5a9006190aa0eb3c.txt (template matching, "Примеры кода").
"""

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
