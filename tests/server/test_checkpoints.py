"""Which checkpoint a request names: best by validation loss, final, one step, a folder under
the checkpoints root (never outside it), or a base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.checkpoints import choose, list_checkpoints, run_layout
from server.http.problems import ProblemError
from server.jobs.store import Job, JobStore
from stages.train.runs import best_of, checkpoint_infos
from tests.server.conftest import make_config

JOB_ID = "training_0123456789"


def write_checkpoint(run: Path, step: int, epochs: list[dict]) -> Path:
    folder = run / "checkpoints" / f"step-{step:08d}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"step": step, "epochs": epochs}))
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x" * 100)
    return folder


def epoch(n: int, step: int, val_loss: float | None) -> dict:
    return {"kind": "epoch", "epoch": n, "step": step, "val_loss": val_loss}


@pytest.fixture
async def setup(tmp_path):
    config = make_config(tmp_path / "var")
    store = await JobStore.open(tmp_path / "jobs.sqlite3")
    job = Job(JOB_ID, "training", "completed", "ds", "gpu", ["train"], {}, created_at=1.0)
    await store.create_job(job)
    run = run_layout(config, job).root
    (run / "base_model").mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps({"base_model": "tiny"}))
    e1, e2, e3 = epoch(1, 5, 2.0), epoch(2, 10, 1.5), epoch(3, 15, 1.7)
    write_checkpoint(run, 5, [e1])
    write_checkpoint(run, 10, [e1, e2])
    write_checkpoint(run, 12, [e1, e2])  # mid-epoch: no validation loss of its own
    write_checkpoint(run, 15, [e1, e2, e3])
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    yield config, store, job, run
    await store.close()


def test_best_is_the_lowest_validation_loss_of_an_epoch_end(tmp_path):
    run = tmp_path / "run"
    write_checkpoint(run, 5, [epoch(1, 5, 2.0)])
    write_checkpoint(run, 7, [epoch(1, 5, 2.0)])
    write_checkpoint(run, 10, [epoch(1, 5, 2.0), epoch(2, 10, 1.0)])
    from stages.train.runs import RunLayout

    infos = checkpoint_infos(RunLayout(run))
    assert [(i.step, i.val_loss, i.epochs_done) for i in infos] == [(5, 2.0, 1), (7, None, 1),
                                                                   (10, 1.0, 2)]  # fmt: skip
    assert best_of(infos).step == 10
    assert all(i.size_bytes > 100 for i in infos)


async def test_the_listing_marks_the_best_and_the_final_adapter(setup):
    config, _store, job, _run = setup
    listing = list_checkpoints(config, job)
    assert [c["step"] for c in listing["checkpoints"]] == [5, 10, 12, 15]
    assert [c["best"] for c in listing["checkpoints"]] == [False, True, False, False]
    assert listing["best"] == "step-00000010" and listing["final"]["name"] == "final"


async def test_a_job_id_chooses_best_by_default_then_final_or_a_step(setup):
    config, store, _job, run = setup
    best = await choose(config, store, JOB_ID, None)
    assert best.adapter == run / "checkpoints" / "step-00000010"
    assert best.base_model == str((run / "base_model").resolve())
    assert best.stage_args()[:2] == ["--checkpoint", best.base_model]
    final = await choose(config, store, JOB_ID, "final")
    assert final.adapter == run / "adapter"
    step = await choose(config, store, JOB_ID, "step-00000012")
    assert step.description["checkpoint"] == "step-00000012"


@pytest.mark.parametrize(
    ("spec", "name", "status", "field"),
    [
        (JOB_ID, "step-00000099", 404, None),
        (JOB_ID, "latest", 422, "checkpoint_name"),
        ("training_ffffffffff", None, 404, None),
        ("tiny", None, 422, "checkpoint"),
        ("some/model", "best", 422, "checkpoint_name"),
    ],
)
async def test_what_names_no_checkpoint_is_a_clear_problem(setup, spec, name, status, field):
    config, store, _job, _run = setup
    with pytest.raises(ProblemError) as raised:
        await choose(config, store, spec, name)
    assert raised.value.status == status and raised.value.field == field


async def test_a_folder_under_the_root_is_an_adapter_of_its_run(setup):
    config, store, _job, run = setup
    chosen = await choose(config, store, f"checkpoints/ds/{JOB_ID}/checkpoints/step-00000005", None)
    assert chosen.adapter == (run / "checkpoints" / "step-00000005").resolve()
    assert chosen.base_model == str((run / "base_model").resolve())
    assert chosen.description["checkpoint"] == f"checkpoints/ds/{JOB_ID}/checkpoints/step-00000005"


@pytest.mark.parametrize("spec", ["../..", "/etc", "checkpoints/../../etc", "ds/../../.."])
async def test_folders_outside_the_root_are_base_model_specs_not_adapters(setup, spec):
    config, store, _job, _run = setup
    chosen = await choose(config, store, spec, None)
    assert chosen.adapter is None and chosen.base_model == spec  # the stage checks it as a model
