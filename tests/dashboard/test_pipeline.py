"""The whole pipeline through the dashboard, in a real browser on a real service with the real
stages: extract -> render -> convert -> validate -> test-run -> training, on the synthetic
source at sizes that finish in a few minutes on two CPU cores (those of tests/e2e).

Checks that a training job's progress bar moves while it runs (no reload), that the loss
chart draws the run's points, that the test-run verdict is shown, and saves a screenshot of
every page (``$DASHBOARD_SCREENSHOTS`` or the test's tmp_path). With
``DASHBOARD_README_SHOT=path`` it also writes the test-run's training page there (how
docs/dashboard-training.png is made).
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.dashboard.conftest import wait_js

NAME = "ui_pipeline"
WATCH_BAR = """() => {
  window.seenValues = new Set();
  new MutationObserver(() => {
    const bar = document.querySelector('#training-body progress');
    if (bar && bar.value > 0 && bar.value < 100) window.seenValues.add(bar.value);
  }).observe(document.body, {subtree: true, attributes: true, childList: true});
}"""


def row_stage(page, stage: str, state: str, timeout: float = 180.0) -> None:
    wait_js(
        page,
        """([name, stage, state]) => {
          const row = document.querySelector(`#datasets-table tr[data-name='${name}']`);
          return row && row.querySelector(`li[title='${stage}: ${state}']`) !== null;
        }""",
        [NAME, stage, state],
        timeout=timeout,
    )


def act(page, action: str, values: dict[str, str] | None = None):
    page.get_by_role("button", name=f"{action} {NAME}").click()
    form = page.locator(f"form.action-form[data-dataset='{NAME}']")
    for label, value in (values or {}).items():
        control = form.get_by_label(label, exact=True)
        if value in ("on", "off"):
            control.set_checked(value == "on")
        elif control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.get_by_role("button", name="Start").click()
    return form


def start_training_job(page, action: str, values: dict[str, str]) -> str:
    form = act(page, action, values)
    link = form.locator(".action-result a")
    link.wait_for(timeout=120_000)
    job_id = link.text_content()
    link.click()
    page.locator("#training-body #loss-chart").wait_for()
    return job_id


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_whole_pipeline_through_the_ui(start_server, pages, shots):
    server = start_server().start()
    page = pages.open()
    page.goto(server.url + "/")

    form = page.locator("#extract-form")
    form.get_by_label("Source").select_option("synthetic")
    form.get_by_label("Train models").fill("12")
    form.get_by_label("Val models").fill("3")
    form.get_by_label("Name").fill(NAME)
    form.get_by_role("button", name="Extract").click()
    row_stage(page, "extraction", "completed")

    act(page, "Render", {"Resolution (px)": "128"})
    row_stage(page, "rendering", "completed")
    page.screenshot(path=str(shots / "datasets.png"), full_page=True)

    act(page, "Convert").locator(".action-result .ok").wait_for(timeout=120_000)
    act(page, "Validate").locator(".action-result .ok").wait_for(timeout=300_000)
    row_stage(page, "validation", "completed")

    page.goto(f"{server.url}/#/datasets/{NAME}")
    page.locator("#gallery article img[src^='blob:']").first.wait_for()
    page.locator("#validation-report", has_text="Valid").wait_for()
    page.screenshot(path=str(shots / "dataset.png"), full_page=True)

    page.goto(server.url + "/#/datasets")
    page.locator(f"#datasets-table tr[data-name='{NAME}']").wait_for()
    test_values = {"Train samples": "12", "Val samples": "3", "Epochs": "4",
                   "Batch size": "4", "Device": "cpu"}  # fmt: skip
    test_id = start_training_job(page, "Test-run", test_values)
    page.evaluate(WATCH_BAR)
    # The bar moves while the job runs, fed by its event stream: two values between 0 and 100.
    wait_js(page, "() => window.seenValues.size >= 2", timeout=300)
    page.locator("#convergence").wait_for(timeout=300_000)
    points = int(page.locator("#loss-chart").get_attribute("data-points"))
    assert points >= 4, points  # step losses and each epoch's train and val loss
    assert page.locator("#loss-chart .val circle").count() == 4
    assert page.locator("#training-status").text_content() == "completed"
    page.screenshot(path=str(shots / "test-run.png"), full_page=True)
    readme_shot = os.environ.get("DASHBOARD_README_SHOT")
    if readme_shot:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=readme_shot, full_page=False)
        page.set_viewport_size({"width": 1360, "height": 900})

    page.goto(server.url + "/#/datasets")
    page.locator(f"#datasets-table tr[data-name='{NAME}']").wait_for()
    train_values = {"Epochs": "2", "Batch size": "4", "Learning rate": "0.002", "LoRA r": "8",
                    "LoRA alpha": "16", "Train samples": "12", "Val samples": "3",
                    "Eval samples": "0", "Device": "cpu"}  # fmt: skip
    train_id = start_training_job(page, "Train", train_values)
    page.locator("#training-status", has_text="completed").wait_for(timeout=600_000)
    page.locator("#checkpoints-table").wait_for()
    assert int(page.locator("#loss-chart").get_attribute("data-points")) >= 4
    page.screenshot(path=str(shots / "training.png"), full_page=True)

    # "Try it": one of the dataset's own images through the trained adapter.
    image = next((server.var / "data" / "training" / NAME / "images").glob("*_front.png"))
    try_it = page.locator("#try-form")
    try_it.get_by_label("Image (PNG or JPEG)").set_input_files(str(image))
    try_it.get_by_label("Max new tokens").fill("48")  # an untrained model rarely stops
    try_it.get_by_role("button", name="Reconstruct").click()
    page.locator("#try-result pre.answer").wait_for(timeout=300_000)
    page.locator("#try-result", has_text="parses").wait_for()
    page.screenshot(path=str(shots / "try-it.png"), full_page=True)

    # An evaluation of the best checkpoint: its best and worst samples beside the reference.
    evaluate = page.locator("#evaluate-form")
    evaluate.get_by_label("Samples", exact=True).fill("2")
    evaluate.get_by_label("Max new tokens").fill("48")
    evaluate.get_by_role("button", name="Evaluate").click()
    samples = page.get_by_role("button", name=re.compile(r"^Samples of evaluation_"))
    samples.first.wait_for(timeout=300_000)
    samples.first.click()
    page.locator("#evaluation-detail .sample .side-by-side").first.wait_for()
    page.locator("#evaluation-detail .sample img[src^='blob:']").first.wait_for()
    page.screenshot(path=str(shots / "evaluation.png"), full_page=True)

    page.goto(server.url + "/#/jobs")
    page.locator(f"#jobs-table tr[data-job='{train_id}']").wait_for()
    page.locator(f"#jobs-table tr[data-job='{test_id}']").wait_for()
    assert page.locator("#jobs-table tbody tr").count() >= 5
    page.screenshot(path=str(shots / "jobs.png"), full_page=True)
    shutil.rmtree(server.var / "checkpoints", ignore_errors=True)
