"""The dashboard in a real browser, fast: static files, the token prompt, a field's error,
live progress of a job from its SSE stream, cancel from the UI, the dataset page's gallery
(thumbnails) and reports, phone width, no console errors, a screenshot of every page.

The server runs the test-only fake stages (a render that counts until cancelled), over a
dataset written here: nothing is rendered or trained.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

from stages.dataset.manifest import COMPLETED, EXTRACTION, new_manifest, write_manifest
from tests.dashboard.conftest import PHONE, wait_js

TOKEN = "dash-s3cret"
RECORDS = 14  # more than a gallery page (12)


def write_dataset(var: Path, name: str) -> None:
    folder = var / "data" / "training" / name
    (folder / "images").mkdir(parents=True)
    manifest = new_manifest(name, counts={"models": RECORDS, "train": RECORDS, "val": 0,
                                          "skipped": {"open_loop": 2}, "replaced": 2})  # fmt: skip
    manifest["stages"][EXTRACTION] = COMPLETED
    write_manifest(folder, manifest)
    records = []
    for i in range(RECORDS):
        image = f"{i:08d}_front.png"
        Image.new("RGB", (256, 256), (40 + 10 * i, 120, 200)).save(folder / "images" / image)
        records.append(
            {
                "id": f"{i:08d}_front",
                "image": image,
                "conversations": [
                    {"from": "human", "value": "<image>\nGenerate the CAD code of this part."},
                    {
                        "from": "gpt",
                        "value": f"Of course, here are the codes:\n```python\n# {i}\n```",
                    },
                ],
            }
        )
    (folder / "train.json").write_text(json.dumps(records))
    report = {"valid": False, "validation": {"format_valid": True}, "problems_total": 1,
              "problem_counts": {"image_unreadable": 1}, "stats": {"models_checked": RECORDS},
              "warnings": [], "problems": [{"check": "image_unreadable", "record": "00000003_front",
                                            "detail": "cannot decode"}]}  # fmt: skip
    (folder / "validation.json").write_text(json.dumps(report))


def get(url: str, token: str = TOKEN) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_static_files_and_thumbnails(start_server):
    server = start_server("--api-token", TOKEN, "--stages-package", "tests.fake_stages")
    write_dataset(server.var, "smoke")
    server.start()
    with urllib.request.urlopen(server.url + "/", timeout=10) as resp:  # no token needed
        assert resp.headers["Content-Type"].startswith("text/html")
        assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"]
        etag = resp.headers["ETag"]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        with urllib.request.urlopen(f"{server.url}/dashboard/{name}", timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith(kind)
    cached = urllib.request.Request(server.url + "/", headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(cached, timeout=10)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as exc:
        assert exc.code == 304
    status, headers, body = get(
        f"{server.url}/training/datasets/smoke/thumbnails/00000001_front.png?size=64"
    )
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (64, 64)
    assert (server.var / "cache" / "thumbnails" / "smoke" / "64" / "00000001_front.png").is_file()
    _, _, page = get(f"{server.url}/training/datasets/smoke/records?offset=12&limit=5")
    data = json.loads(page)
    assert data["total"] == RECORDS and len(data["records"]) == 2


def test_token_progress_cancel_and_pages(start_server, pages, shots):
    server = start_server("--api-token", TOKEN, "--stages-package", "tests.fake_stages")
    write_dataset(server.var, "smoke")
    server.start()
    page = pages.open()
    page.goto(server.url + "/")
    # The token prompt: a wrong token is refused and asked again, the right one kept.
    dialog = page.locator("#token-dialog")
    dialog.wait_for(state="visible")
    page.get_by_role("textbox", name="Token").fill("wrong")
    pages.allow(f"status of 401 (Unauthorized) ({{'url': '{server.url}/training/datasets'")
    page.get_by_role("button", name="Use token").click()
    wait_js(page, "() => document.querySelector('#token-error').textContent.includes('refused')")
    page.get_by_role("textbox", name="Token").fill(TOKEN)
    page.keyboard.press("Enter")  # the keyboard submits it
    page.locator("#datasets-table tr[data-name=smoke]").wait_for()
    assert page.evaluate("sessionStorage.getItem('cadvlm.token')") == TOKEN
    page.screenshot(path=str(shots / "datasets.png"), full_page=True)

    # A refused value shows the problem's detail beside the field it names.
    form = page.locator("#extract-form")
    form.get_by_label("Train models").fill("99999999")
    form.get_by_label("Name").fill("again")
    pages.allow(
        f"status of 422 (Unprocessable Entity) ({{'url': '{server.url}/training/datasets/extract'"
    )
    form.get_by_role("button", name="Extract").click()
    form.locator(".field-error[data-error-for=train_size]", has_text="1000000").wait_for()

    # Render (the fake stage counts until cancelled): progress moves live on the jobs page.
    page.get_by_role("button", name="Render smoke").click()
    action = page.locator("#action-render")
    action.get_by_role("button", name="Start").click()
    link = action.locator(".action-result a")
    link.wait_for()
    job_id = link.text_content()
    page.goto(server.url + "/#/jobs")
    bar = page.locator(f"#jobs-table tr[data-job='{job_id}'] progress")
    bar.wait_for()
    page.evaluate(
        """(id) => {
          window.seenValues = new Set();
          const watch = () => {
            const bar = document.querySelector(`#jobs-table tr[data-job='${id}'] progress`);
            if (bar) window.seenValues.add(bar.value);
          };
          new MutationObserver(watch).observe(document.body,
            {subtree: true, attributes: true, childList: true});
        }""",
        job_id,
    )
    wait_js(page, "() => window.seenValues.size >= 3")  # moved three times without a reload
    rate = page.locator(f"#jobs-table tr[data-job='{job_id}'] .rate")
    rate.filter(has_text="/s").wait_for()
    page.screenshot(path=str(shots / "jobs.png"), full_page=True)
    page.get_by_role("button", name=f"Cancel {job_id}").click()
    page.locator(f"#jobs-table tr[data-job='{job_id}'] .status", has_text="cancelled").wait_for()
    _, _, body = get(f"{server.url}/training/jobs/{job_id}/progress")
    assert json.loads(body)["status"] == "cancelled"

    # The job's own page: log tail, result, resume button.
    page.goto(f"{server.url}/#/jobs/{job_id}")
    page.get_by_role("button", name=f"Resume {job_id}").wait_for()
    page.screenshot(path=str(shots / "job.png"), full_page=True)

    # The dataset page: thumbnails (small), prompts and answers, paged; the reports.
    page.goto(f"{server.url}/#/datasets/smoke")
    page.locator("#gallery article").first.wait_for()
    assert page.locator("#gallery article").count() == 12
    wait_js(
        page,
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every(i => i.complete && i.naturalWidth === 128)",
    )
    page.get_by_role("button", name="Next").click()
    wait_js(page, "() => document.querySelectorAll('#gallery article').length === 2")
    page.locator("#validation-report", has_text="image_unreadable").wait_for()
    page.locator("text=open_loop").wait_for()
    page.screenshot(path=str(shots / "dataset.png"), full_page=True)

    page.goto(f"{server.url}/#/training")
    page.locator("#training-body", has_text="no training jobs").or_(
        page.locator("#training-body", has_text="Start a test-run")
    ).wait_for()
    page.screenshot(path=str(shots / "training-empty.png"), full_page=True)

    # Phone width, keyboard: the nav links are reachable with Tab.
    phone = pages.open(PHONE)
    phone.goto(server.url + "/")
    phone.get_by_role("textbox", name="Token").fill(TOKEN)
    phone.keyboard.press("Enter")
    phone.locator("#datasets-table tr[data-name=smoke]").wait_for()
    phone.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(4):  # the skip link, then the nav
        phone.keyboard.press("Tab")
        if phone.evaluate("document.activeElement.textContent") == "Jobs":
            break
    assert phone.evaluate("document.activeElement.textContent") == "Jobs"
    phone.keyboard.press("Enter")
    phone.locator("#jobs-table").wait_for()
    phone.go_back()
    phone.locator("#datasets-table tr[data-name=smoke]").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.screenshot(path=str(shots / "datasets-phone.png"), full_page=True)
