// Training: live loss curves (train per step and per epoch, validation per epoch), learning
// rate, throughput and GPU memory from the job's metric events; the test-run verdict; the
// checkpoints; evaluations with the best and worst samples; and a "try it" reconstruction.
import { api, JobStream, loadImage } from "./api.js";
import { chartElement, drawChart } from "./chart.js";
import { field, fill, fmtNumber, formBody, h, keyValues, notify, submitForm } from "./dom.js";
import { jobButtons, LiveJob } from "./jobs.js";

export const name = "training";
const KINDS = ["training_test", "training"];

export function render(main, jobId) {
  let alive = true;
  const cleanups = [];
  const picker = h("select", { id: "training-job", name: "job" });
  picker.addEventListener("change", () => (location.hash = `#/training/${picker.value}`));
  main.append(h("h1", {}, "Training"), h("div", { class: "pager" }, h("label", { for: "training-job" }, "Training job"), picker));
  const body = h("div", { id: "training-body" });
  main.append(body);

  (async () => {
    let jobs = [];
    try {
      const lists = await Promise.all(KINDS.map((k) => api(`/training/jobs?kind=${k}&limit=100`)));
      jobs = lists.flatMap((l) => l.jobs).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    } catch (error) {
      fill(body, h("p", { class: "form-error" }, error.message));
      return;
    }
    if (!alive) return;
    fill(picker, ...jobs.map((j) => h("option", { value: j.job_id, selected: j.job_id === jobId }, `${j.job_id} · ${j.kind} · ${j.dataset}`)));
    if (!jobs.length) {
      picker.append(h("option", { value: "" }, "no training jobs yet"));
      fill(body, h("p", { class: "muted" }, "Start a test-run or a training from the Datasets page."));
      return;
    }
    const chosen = jobs.find((j) => j.job_id === jobId) || jobs[0];
    cleanups.push(showJob(body, chosen));
  })();
  return () => {
    alive = false;
    for (const c of cleanups) c?.();
  };
}

function showJob(body, job) {
  const id = encodeURIComponent(job.job_id);
  let alive = true;
  const steps = [];
  const epochs = [];
  const lrs = [];
  const evals = [];
  let last = {};
  let frame = 0;
  const lossSvg = chartElement({ id: "loss-chart", class: "chart", role: "img", "aria-label": "loss curves" });
  const lrSvg = chartElement({ id: "lr-chart", class: "chart small-chart", role: "img", "aria-label": "learning rate" });
  const facts = h("div", { id: "training-facts" });
  const verdict = h("section", { class: "panel", id: "verdict", "aria-labelledby": "verdict-title" });
  const checkpoints = h("section", { class: "panel", id: "checkpoints", "aria-labelledby": "ckpt-title" });
  const evaluation = h("section", { class: "panel", id: "evaluation", "aria-labelledby": "eval-title" });
  const tryIt = tryPanel(job);
  const live = new LiveJob(job, () => {});
  const status = h("span", { class: `badge status-${job.status}`, id: "training-status" }, job.status);
  const buttons = h("span", { class: "buttons" });
  const paintButtons = () => fill(buttons, jobButtons(live.job, () => setTimeout(refreshStatus, 300)));
  paintButtons();
  fill(body, 
    h(
      "section",
      { class: "panel" },
      h("div", { class: "row-between" }, h("h2", {}, job.job_id, " ", status), h("div", { class: "buttons" }, buttons, h("a", { href: `#/jobs/${id}` }, "log and result"))),
      h("div", { class: "progress-cell big" }, live.bar, live.label),
      h("p", {}, "Rate: ", live.rateCell, " · Remaining: ", live.etaCell),
      facts,
    ),
    h("section", { class: "panel" }, h("h2", {}, "Loss"), lossSvg, h("h3", {}, "Learning rate"), lrSvg),
    verdict,
    checkpoints,
    evaluation,
    tryIt,
  );

  function redraw() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      drawChart(
        lossSvg,
        [
          { name: "train (step)", cls: "train", points: steps },
          { name: "train (epoch)", cls: "train-epoch", points: epochs.filter((e) => e.train_loss != null).map((e) => [e.step, e.train_loss]), dots: true },
          { name: "val (epoch)", cls: "val", points: epochs.filter((e) => e.val_loss != null).map((e) => [e.step, e.val_loss]), dots: true },
        ],
        { xLabel: "step", yLabel: "loss", width: 900, height: 340 },
      );
      drawChart(lrSvg, [{ name: "learning rate", cls: "lr", points: lrs }], { xLabel: "step", yLabel: "lr", width: 900, height: 200 });
      fill(facts, 
        keyValues({
          epoch: last.epoch,
          step: last.step,
          "train loss": last.train_loss,
          "val loss": [...epochs].reverse().find((e) => e.val_loss != null)?.val_loss,
          "learning rate": last.lr,
          "samples/s": last.samples_per_s,
          "tokens/s": last.tokens_per_s,
          "GPU memory (GB)": last.gpu_mem_gb ?? "n/a on this device",
        }),
      );
    });
  }

  const stream = new JobStream(job.job_id, (event, data) => {
    const before = live.job.status;
    live.event(event, data);
    status.textContent = live.job.status;
    status.className = `badge status-${live.job.status}`;
    if (before !== live.job.status) paintButtons();
    if (event === "metric") {
      if (data.kind === "evaluation") evals.push(data);
      else {
        if (data.kind === "epoch") epochs.push(data);
        else if (data.train_loss != null) steps.push([data.step, data.train_loss]);
        if (data.lr != null) lrs.push([data.step, data.lr]);
        last = { ...last, ...data };
      }
      redraw();
    }
    if (event === "end") setTimeout(refreshStatus, 200);
  });
  redraw();

  async function refreshStatus() {
    if (!alive) return;
    if (job.kind === "training_test") {
      try {
        const r = await api(`/training/test-run/${id}/results`);
        const res = r.results || {};
        fill(verdict, 
          h("h2", { id: "verdict-title" }, "Test-run verdict"),
          res.convergence
            ? h(
                "dl",
                { class: "kv verdict" },
                h("dt", {}, "Improvement"),
                h("dd", { id: "improvement" }, `${fmtNumber(res.total_improvement)}%`),
                h("dt", {}, "Convergence"),
                h("dd", {}, h("span", { class: `badge conv-${res.convergence}`, id: "convergence" }, res.convergence)),
                h("dt", {}, "Overfitting"),
                h("dd", { id: "overfitting" }, res.overfitting ? "yes" : "no"),
              )
            : h("p", { class: "muted" }, r.status === "completed" ? "No verdict." : "The verdict comes when the run ends."),
          h("p", { class: "muted" }, "Improvement is 100 × (first − last) / first of the epochs' mean training losses; convergence is diverged below 0% or with a non-finite loss, excellent at 50% or more, good at 20% or more, else poor; overfitting means the last validation loss is over 5% above the best while the training loss still fell."),
          lossTable(res.loss_progression || []),
          res.performance ? h("details", {}, h("summary", {}, "Performance"), keyValues(res.performance)) : null,
        );
      } catch (error) {
        fill(verdict, h("h2", { id: "verdict-title" }, "Test-run verdict"), h("p", { class: "form-error" }, error.message));
      }
    } else {
      try {
        const s = await api(`/training/${id}/status`);
        fill(verdict, h("h2", { id: "verdict-title" }, "Status"), keyValues({ ...s.progress, ...s.metrics, estimated_remaining: s.estimated_remaining, best_checkpoint: s.best_checkpoint }), s.evaluation ? h("div", {}, h("h3", {}, "Evaluation of the best checkpoint"), keyValues(s.evaluation)) : null);
      } catch (error) {
        fill(verdict, h("h2", { id: "verdict-title" }, "Status"), h("p", { class: "form-error" }, error.message));
      }
    }
    try {
      const c = await api(`/training/${id}/checkpoints`);
      fill(checkpoints, 
        h("h2", { id: "ckpt-title" }, "Checkpoints"),
        c.checkpoints.length
          ? h(
              "div",
              { class: "table-wrap" },
              h(
                "table",
                { id: "checkpoints-table" },
                h("thead", {}, h("tr", {}, ["Name", "Step", "Epoch", "Val loss", "Size", "Best"].map((x) => h("th", { scope: "col" }, x)))),
                h("tbody", {}, c.checkpoints.map((k) => h("tr", {}, h("td", {}, k.name), h("td", {}, fmtNumber(k.step)), h("td", {}, fmtNumber(k.epoch)), h("td", {}, fmtNumber(k.val_loss)), h("td", {}, k.size || fmtNumber(k.size_bytes)), h("td", {}, k.best ? "★ best" : "")))),
              ),
            )
          : h("p", { class: "muted" }, "No checkpoints yet."),
        c.final ? h("p", {}, "Final adapter saved.") : null,
      );
    } catch (error) {
      fill(checkpoints, h("h2", { id: "ckpt-title" }, "Checkpoints"), h("p", { class: "muted" }, error.message));
    }
    evaluationPanel(evaluation, job);
  }
  refreshStatus();
  return () => {
    alive = false;
    stream.close();
    cancelAnimationFrame(frame);
  };
}

function lossTable(rows) {
  if (!rows.length) return null;
  return h(
    "table",
    { class: "compact" },
    h("thead", {}, h("tr", {}, ["Epoch", "Train loss", "Val loss"].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.epoch), h("td", {}, fmtNumber(r.train_loss, 4)), h("td", {}, fmtNumber(r.val_loss, 4))))),
  );
}

async function evaluationPanel(panel, job) {
  const title = h("h2", { id: "eval-title" }, "Evaluation");
  const form = h(
    "form",
    { class: "inline-form", id: "evaluate-form" },
    field({ name: "checkpoint_name", label: "Checkpoint", type: "select", options: ["best", "final"], value: "best" }),
    field({ name: "samples", label: "Samples", type: "number", min: 1, value: 8 }),
    field({ name: "max_new_tokens", label: "Max new tokens", type: "number", min: 1, placeholder: "default" }),
    h("button", { type: "submit" }, "Evaluate"),
    h("p", { class: "form-error", role: "alert" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const started = await submitForm(form, () => api("/training/evaluate", { method: "POST", body: { dataset: job.dataset, checkpoint: job.job_id, ...formBody(form) } }));
    if (!started) return;
    notify(`Evaluation ${started.job_id} started`);
    const progress = h("progress", { max: 100, value: 0, "aria-label": `progress of ${started.job_id}` });
    form.after(h("p", { class: "muted", id: "evaluation-running" }, `Evaluating (${started.job_id}) `, progress));
    const watch = new JobStream(started.job_id, (name, data) => {
      if (name === "progress" && data.total) progress.value = (100 * data.current) / data.total;
      if (name === "end") {
        watch.close();
        if (panel.isConnected) evaluationPanel(panel, job);
      }
    });
  });
  let list;
  try {
    list = await api(`/training/evaluations?dataset=${encodeURIComponent(job.dataset)}&limit=20`);
  } catch (error) {
    fill(panel, title, h("p", { class: "muted" }, error.message));
    return;
  }
  const mine = list.evaluations.filter((e) => JSON.stringify(e.checkpoint || "").includes(job.job_id));
  const shown = mine.length ? mine : list.evaluations;
  const detail = h("div", { id: "evaluation-detail" });
  fill(panel, 
    title,
    form,
    shown.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Evaluation", "Status", "Samples", "Invalid", "IoU (mean)", "Chamfer (median)", ""].map((x) => h("th", { scope: "col" }, x)))),
            h(
              "tbody",
              {},
              shown.map((e) =>
                h(
                  "tr",
                  {},
                  h("th", { scope: "row" }, e.job_id),
                  h("td", {}, e.status),
                  h("td", {}, fmtNumber(e.summary?.count)),
                  h("td", {}, fmtNumber(e.summary?.invalid_ratio)),
                  h("td", {}, fmtNumber(stat(e.summary?.iou, "mean"))),
                  h("td", {}, fmtNumber(stat(e.summary?.chamfer, "median"))),
                  h("td", {}, h("button", { type: "button", class: "small", onclick: () => samples(detail, e.job_id), "aria-label": `Samples of ${e.job_id}` }, "Samples")),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No evaluations of this dataset yet."),
    detail,
  );
}

async function samples(detail, evalId) {
  let data;
  try {
    data = await api(`/training/evaluations/${encodeURIComponent(evalId)}?limit=500`);
  } catch (error) {
    fill(detail, h("p", { class: "form-error" }, error.message));
    return;
  }
  const score = (s) => (typeof s.iou === "number" ? s.iou : -1);
  const sorted = [...data.samples].sort((a, b) => score(b) - score(a));
  const best = sorted.slice(0, Math.min(3, Math.ceil(sorted.length / 2)));
  const worst = sorted.slice(best.length).slice(-3).reverse();
  const card = (s) =>
    h(
      "article",
      { class: "sample" },
      h("p", {}, h("strong", {}, s.record_id || s.id || s.model_id || ""), ` IoU ${fmtNumber(s.iou)} · Chamfer ${fmtNumber(s.chamfer)}`, s.error ? h("span", { class: "form-error" }, ` ${errorText(s.error)}`) : ""),
      h(
        "div",
        { class: "side-by-side" },
        h("div", {}, h("h4", {}, "Reference"), imgs(s.reference_images)),
        h("div", {}, h("h4", {}, "Generated"), imgs(s.generated_images)),
      ),
      s.generated || s.code ? h("details", {}, h("summary", {}, "Generated code"), h("pre", { class: "answer" }, s.generated || s.code)) : null,
    );
  fill(detail, h("h3", {}, "Best samples"), h("div", { class: "samples" }, best.map(card)), h("h3", {}, "Worst samples"), h("div", { class: "samples" }, worst.map(card)));
}

function imgs(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h("p", { class: "muted" }, "no views");
  return h(
    "div",
    { class: "views" },
    entries.map(([view, url]) => {
      const img = h("img", { alt: view, width: 128, height: 128 });
      loadImage(img, url);
      return h("figure", {}, img, h("figcaption", {}, view));
    }),
  );
}

// A summary figure: a number, or one statistic of {mean, median, ...}.
function stat(value, key) {
  return value !== null && typeof value === "object" ? value[key] ?? null : value;
}

function errorText(error) {
  if (typeof error !== "object" || error === null) return String(error);
  return error.message || error.detail || error.reason || JSON.stringify(error);
}

function tryPanel(job) {
  const out = h("div", { id: "try-result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "inline-form", id: "try-form" },
    field({ name: "image", label: "Image (PNG or JPEG)", type: "file", accept: "image/png,image/jpeg", required: true }),
    field({ name: "checkpoint_name", label: "Checkpoint", type: "select", options: ["best", "final"], value: "best" }),
    field({ name: "max_new_tokens", label: "Max new tokens", type: "number", min: 1, placeholder: "default" }),
    h("button", { type: "submit" }, "Reconstruct"),
    h("p", { class: "form-error", role: "alert" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append("image", form.elements.image.files[0]);
    data.append("checkpoint", job.job_id);
    data.append("checkpoint_name", form.elements.checkpoint_name.value);
    if (form.elements.max_new_tokens.value) data.append("max_new_tokens", form.elements.max_new_tokens.value);
    fill(out, h("p", { class: "muted" }, "Reconstructing…"));
    const r = await submitForm(form, () => api("/inference/reconstruct", { method: "POST", form: data }));
    if (!r) return fill(out);
    fill(out, 
      h("p", {}, `parses: ${r.parses} · builds: ${r.builds}`, r.error ? ` · ${errorText(r.error)}` : ""),
      r.solid ? keyValues({ volume_mm3: r.solid.volume_mm3, size: JSON.stringify(r.solid.bbox_mm?.size) }) : null,
      h("pre", { class: "answer" }, r.code || ""),
      imgs(Object.fromEntries((r.views || []).map((v) => [v.view, v.url]))),
    );
  });
  return h("section", { class: "panel", id: "try-it", "aria-labelledby": "try-title" }, h("h2", { id: "try-title" }, "Try it: reconstruct CAD from an image"), form, out);
}
