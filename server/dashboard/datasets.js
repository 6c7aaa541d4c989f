// Datasets: every dataset with each stage's state and counts; extract a new one; act on one.
import { api } from "./api.js";
import { checkboxGroup, field, fill, fmtNumber, formBody, h, notify, showError, submitForm } from "./dom.js";

export const name = "datasets";
const STAGES = ["extraction", "rendering", "conversion", "validation"];
const SHORT = { extraction: "extract", rendering: "render", conversion: "convert", validation: "validate" };
const VIEWS = ["front", "top", "right", "back", "left", "bottom", "iso"];

export function render(main) {
  let timer = null;
  let alive = true;
  const tbody = h("tbody");
  const panel = h("section", { class: "panel action-panel", hidden: true, "aria-live": "polite" });
  const skipped = h("p", { class: "muted" });
  const extractForm = h(
    "form",
    { class: "inline-form", id: "extract-form", "aria-labelledby": "extract-title" },
    h("h2", { id: "extract-title" }, "Extract a dataset"),
    field({ name: "source", label: "Source", type: "select", options: ["synthetic", "deepcad"], value: "synthetic" }),
    field({ name: "train_size", label: "Train models", type: "number", value: 100, min: 1 }),
    field({ name: "val_size", label: "Val models", type: "number", value: 10, min: 1 }),
    field({ name: "output_name", label: "Name", value: "", placeholder: "deepcad_1k", required: true }),
    h("button", { type: "submit" }, "Extract"),
    h("p", { class: "form-error", role: "alert" }),
  );
  extractForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const started = await submitForm(extractForm, () => api("/training/datasets/extract", { method: "POST", body: formBody(extractForm) }));
    if (started) {
      notify(`Extraction started: job ${started.job_id}`);
      refresh();
    }
  });

  main.append(
    h("h1", {}, "Datasets"),
    extractForm,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "datasets-table" },
        h("caption", { class: "sr-only" }, "Datasets with their stages and counts"),
        h("thead", {}, h("tr", {}, ["Name", "Status", "Stages", "Models", "Images", "Conversations", "Size", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
    skipped,
    panel,
  );

  async function refresh() {
    clearTimeout(timer);
    let data;
    try {
      data = await api("/training/datasets");
    } catch (error) {
      fill(tbody, h("tr", {}, h("td", { colspan: 8, class: "form-error" }, error.message)));
      return;
    }
    if (!alive) return;
    fill(tbody, ...(data.datasets.length ? data.datasets.map(row) : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No datasets yet: extract one above."))]));
    skipped.textContent = data.skipped?.length ? `Skipped in the data root: ${data.skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}` : "";
    const busy = data.datasets.some((d) => Object.values(d.stages || {}).includes("in_progress") || d.status === "extracting");
    timer = setTimeout(refresh, busy ? 1500 : 5000);
  }

  function row(d) {
    const stages = h(
      "ul",
      { class: "stages" },
      STAGES.map((s) => h("li", { class: `badge state-${d.stages?.[s] || "pending"}`, title: `${s}: ${d.stages?.[s] || "pending"}` }, `${SHORT[s]}: ${(d.stages?.[s] || "pending").replace("_", " ")}`)),
    );
    const act = (label, fn) => h("button", { type: "button", class: "small", onclick: fn, "aria-label": `${label} ${d.name}` }, label);
    return h(
      "tr",
      { dataset: { name: d.name } },
      h("th", { scope: "row" }, h("a", { href: `#/datasets/${encodeURIComponent(d.name)}` }, d.name)),
      h("td", {}, h("span", { class: `badge status-${d.status}` }, d.status)),
      h("td", {}, stages),
      h("td", { class: "num" }, fmtNumber(d.models)),
      h("td", { class: "num" }, fmtNumber(d.images)),
      h("td", { class: "num" }, fmtNumber(d.conversations)),
      h("td", { class: "num" }, d.size),
      h(
        "td",
        { class: "actions" },
        act("Render", () => showAction(d.name, "render")),
        act("Convert", () => showAction(d.name, "convert")),
        act("Validate", () => showAction(d.name, "validate")),
        act("Test-run", () => showAction(d.name, "test-run")),
        act("Train", () => showAction(d.name, "train")),
        act("Delete", () => showAction(d.name, "delete")),
      ),
    );
  }

  const ACTIONS = {
    render: {
      title: "Render views",
      fields: () => [
        checkboxGroup("views", "Views", VIEWS, ["front", "top", "right"]),
        field({ name: "resolution", label: "Resolution (px)", type: "number", value: 512, min: 64, max: 2048 }),
        field({ name: "composite", label: "2x2 composite", type: "checkbox", value: false }),
      ],
      call: (ds, body) => api(`/training/datasets/${encodeURIComponent(ds)}/render`, { method: "POST", body }),
    },
    convert: {
      title: "Convert to TinyLLaVA records",
      fields: () => [
        field({ name: "layout", label: "Layout", type: "select", options: ["per_view", "composite", "iso"], value: "per_view" }),
        field({ name: "randomize_templates", label: "Randomise prompt wordings", type: "checkbox", value: true }),
      ],
      call: (ds, body) => api(`/training/datasets/${encodeURIComponent(ds)}/convert`, { method: "POST", body: { format: "tinyllava", ...body } }),
    },
    validate: {
      title: "Validate every record, image and answer",
      fields: () => [],
      call: (ds) => api(`/training/datasets/${encodeURIComponent(ds)}/validate`, { method: "POST" }),
    },
    "test-run": {
      title: "Test-run (short LoRA training)",
      fields: () => [
        field({ name: "train_samples", label: "Train samples", type: "number", min: 1, placeholder: "100" }),
        field({ name: "val_samples", label: "Val samples", type: "number", min: 1, placeholder: "20" }),
        field({ name: "epochs", label: "Epochs", type: "number", min: 1, placeholder: "5" }),
        field({ name: "batch_size", label: "Batch size", type: "number", min: 1, placeholder: "4" }),
        field({ name: "device", label: "Device", type: "select", options: ["auto", "cpu", "cuda", "mps"], value: "auto" }),
      ],
      call: (ds, body) => api("/training/test-run", { method: "POST", body: { dataset: ds, ...body } }),
    },
    train: {
      title: "Start the LoRA fine-tune",
      fields: () => [
        field({ name: "config.epochs", label: "Epochs", type: "number", min: 1, placeholder: "1" }),
        field({ name: "config.batch_size", label: "Batch size", type: "number", min: 1, placeholder: "4" }),
        field({ name: "config.learning_rate", label: "Learning rate", type: "number", step: "any", placeholder: "1e-4" }),
        field({ name: "config.lora_r", label: "LoRA r", type: "number", min: 1, placeholder: "128" }),
        field({ name: "config.lora_alpha", label: "LoRA alpha", type: "number", min: 1, placeholder: "256" }),
        field({ name: "config.train_samples", label: "Train samples", type: "number", min: 1, placeholder: "all" }),
        field({ name: "config.val_samples", label: "Val samples", type: "number", min: 1, placeholder: "all" }),
        field({ name: "config.eval_samples", label: "Eval samples", type: "number", min: 0, placeholder: "8" }),
        field({ name: "config.device", label: "Device", type: "select", options: ["auto", "cpu", "cuda", "mps"], value: "auto" }),
      ],
      call: (ds, body) => api("/training/start", { method: "POST", body: { dataset: ds, config: body.config || {} } }),
    },
    delete: {
      title: "Delete the dataset",
      fields: (ds) => [h("p", {}, `This deletes ${ds} and every file of it. Type its name to confirm.`), field({ name: "confirm", label: "Dataset name", value: "", autocomplete: "off" })],
      check: (ds, body) => (body.confirm === ds ? null : { field: "confirm", message: "type the dataset's name to delete it" }),
      call: (ds) => api(`/training/datasets/${encodeURIComponent(ds)}`, { method: "DELETE" }),
      danger: true,
    },
  };

  function showAction(ds, kind) {
    const spec = ACTIONS[kind];
    const form = h(
      "form",
      { class: "action-form", id: `action-${kind}`, dataset: { action: kind, dataset: ds } },
      h("h2", {}, `${spec.title}: ${ds}`),
      h("div", { class: "fields" }, spec.fields(ds)),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", class: spec.danger ? "danger" : "" }, spec.danger ? "Delete" : "Start"),
        h("button", { type: "button", class: "quiet", onclick: () => (panel.hidden = true) }, "Close"),
      ),
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "action-result" }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = formBody(form);
      const refused = spec.check?.(ds, body);
      if (refused) {
        showError(form, { field: refused.field, message: refused.message });
        return;
      }
      const result = await submitForm(form, () => spec.call(ds, body));
      if (result === undefined) return;
      const out = form.querySelector(".action-result");
      const job = result.job_id;
      fill(out, 
        h("p", { class: "ok" }, job ? "Started " : "Done. ", job ? h("a", { href: kind === "test-run" || kind === "train" ? `#/training/${job}` : `#/jobs/${job}` }, job) : ""),
        h("details", {}, h("summary", {}, "Response"), h("pre", {}, JSON.stringify(result, null, 2))),
      );
      notify(job ? `Job ${job} started` : `${spec.title}: done`);
      refresh();
    });
    fill(panel, form);
    panel.hidden = false;
    form.querySelector("input, select, button")?.focus();
  }

  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
