// Jobs: every job, live progress (rate, time remaining) from each active job's SSE stream,
// cancel and resume; one job's page adds its log tail and its final result.
import { api, JobStream } from "./api.js";
import { fill, fmtDuration, fmtNumber, h, notify } from "./dom.js";

export const name = "jobs";
const ACTIVE = ["queued", "running"];
const RESUMABLE = ["interrupted", "cancelled", "failed"];
// A browser opens at most six connections to one server over HTTP/1.1 and each stream holds
// one: the first few active jobs stream, the others follow the list's polling.
const MAX_STREAMS = 4;

// A job's live view: the progress bar, rate and remaining time, fed by its event stream.
export class LiveJob {
  constructor(job, onChange) {
    this.job = job;
    this.onChange = onChange;
    this.samples = [];
    this.rate = null;
    this.remaining = job.progress?.estimated_remaining_s ?? null;
    this.bar = h("progress", { max: 100, value: job.percentage ?? job.progress?.percentage ?? 0, "aria-label": `progress of ${job.job_id}` });
    this.label = h("span", { class: "pct" });
    this.rateCell = h("span", { class: "rate" });
    this.etaCell = h("span", { class: "eta" });
    this.paint();
  }

  watch() {
    if (this.stream || !ACTIVE.includes(this.job.status)) return;
    this.stream = new JobStream(this.job.job_id, (event, data) => this.event(event, data));
  }

  event(event, data) {
    if (event === "start" && this.job.status === "queued") this.job.status = "running";
    if (event === "progress" && data.total) {
      const now = performance.now() / 1000;
      this.job.status = "running";
      this.current = data.current;
      this.total = data.total;
      this.unit = data.unit;
      const pct = Math.min(100, (100 * data.current) / data.total);
      this.samples.push([now, data.current]);
      while (this.samples.length > 2 && now - this.samples[0][0] > 15) this.samples.shift();
      const [t0, c0] = this.samples[0];
      if (now > t0 && data.current > c0) {
        this.rate = (data.current - c0) / (now - t0);
        this.remaining = (data.total - data.current) / this.rate;
      }
      this.bar.value = pct;
    }
    if (event === "end") {
      this.job.status = data.status;
      if (data.status === "completed") this.bar.value = 100;
      this.remaining = data.status === "completed" ? 0 : null;
    }
    this.paint();
    this.onChange?.(event, data, this);
  }

  paint() {
    this.bar.dataset.status = this.job.status;
    this.label.textContent = `${Math.round(this.bar.value)}%${this.total ? ` (${fmtNumber(this.current)}/${fmtNumber(this.total)})` : ""}`;
    this.rateCell.textContent = this.rate ? `${fmtNumber(this.rate)} ${this.unit || "items"}/s` : "—";
    this.etaCell.textContent = this.job.status === "running" ? fmtDuration(this.remaining) : "—";
  }

  // From a listing (for a job without a stream of its own).
  update(job) {
    this.job = { ...this.job, ...job };
    this.bar.value = job.percentage ?? this.bar.value;
    this.paint();
  }

  close() {
    this.stream?.close();
  }
}

export function jobButtons(job, after) {
  const call = async (what) => {
    try {
      await api(`/training/jobs/${encodeURIComponent(job.job_id)}/${what}`, { method: "POST" });
      notify(`${what === "cancel" ? "Cancel requested for" : "Resumed"} ${job.job_id}`);
    } catch (error) {
      notify(`${job.job_id}: ${error.message}`);
    }
    after?.();
  };
  return [
    ACTIVE.includes(job.status) ? h("button", { type: "button", class: "small danger", onclick: () => call("cancel"), "aria-label": `Cancel ${job.job_id}` }, "Cancel") : null,
    RESUMABLE.includes(job.status) && ["render", "training", "training_test", "evaluation"].includes(job.kind)
      ? h("button", { type: "button", class: "small", onclick: () => call("resume"), "aria-label": `Resume ${job.job_id}` }, "Resume")
      : null,
  ];
}

function jobLink(job) {
  const training = job.kind === "training" || job.kind === "training_test";
  return h("a", { href: training ? `#/training/${job.job_id}` : `#/jobs/${job.job_id}` }, job.job_id);
}

export function render(main, jobId) {
  return jobId ? renderOne(main, jobId) : renderAll(main);
}

function renderAll(main) {
  const live = new Map();
  let timer = null;
  let alive = true;
  const tbody = h("tbody");
  const filter = h("select", { id: "job-filter" }, ["all", "active", "completed", "failed", "cancelled", "interrupted"].map((s) => h("option", { value: s }, s)));
  filter.addEventListener("change", () => refresh());
  main.append(
    h("h1", {}, "Jobs"),
    h("div", { class: "pager" }, h("label", { for: "job-filter" }, "Show"), filter),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "jobs-table" },
        h("caption", { class: "sr-only" }, "Jobs, newest first"),
        h("thead", {}, h("tr", {}, ["Job", "Kind", "Dataset", "Status", "Progress", "Rate", "Remaining", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
  );

  async function refresh() {
    clearTimeout(timer);
    const status = filter.value === "all" ? "" : filter.value === "active" ? "queued,running" : filter.value;
    let data;
    try {
      data = await api(`/training/jobs?limit=100${status ? `&status=${status}` : ""}`);
    } catch (error) {
      fill(tbody, h("tr", {}, h("td", { colspan: 8, class: "form-error" }, error.message)));
      return;
    }
    if (!alive) return;
    const seen = new Set();
    let polled = false;
    const rows = data.jobs.map((job) => {
      seen.add(job.job_id);
      let lj = live.get(job.job_id);
      if (!lj || (lj.job.status !== job.status && !lj.stream)) {
        lj?.close();
        lj = new LiveJob(job, (event) => {
          const badge = lj.row?.querySelector(".status");
          if (badge) badge.textContent = lj.job.status;
          if (event === "end") setTimeout(refresh, 200);
        });
        live.set(job.job_id, lj);
      } else if (!lj.stream) lj.update(job);
      const streams = [...live.values()].filter((l) => l.stream && !l.stream.closed).length;
      if (streams < MAX_STREAMS) lj.watch();
      else if (ACTIVE.includes(job.status)) polled = true;
      const row = h(
        "tr",
        { dataset: { job: job.job_id, status: lj.job.status } },
        h("th", { scope: "row" }, jobLink(job)),
        h("td", {}, job.kind),
        h("td", {}, job.dataset ? h("a", { href: `#/datasets/${encodeURIComponent(job.dataset)}` }, job.dataset) : "—"),
        h("td", {}, h("span", { class: `badge status-${lj.job.status} status` }, lj.job.status)),
        h("td", { class: "progress-cell" }, lj.bar, lj.label),
        h("td", {}, lj.rateCell),
        h("td", {}, lj.etaCell),
        h("td", { class: "actions" }, jobButtons(lj.job, () => setTimeout(refresh, 300))),
      );
      lj.row = row;
      return row;
    });
    for (const [id, lj] of live) if (!seen.has(id)) (lj.close(), live.delete(id));
    fill(tbody, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No jobs."))]));
    timer = setTimeout(refresh, polled ? 1500 : 5000);
  }

  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
    for (const lj of live.values()) lj.close();
  };
}

function renderOne(main, jobId) {
  let alive = true;
  let lj = null;
  let logTimer = null;
  const head = h("div", { class: "panel" }, h("p", { class: "muted" }, "Loading…"));
  const log = h("pre", { class: "log", id: "job-log", tabindex: 0, "aria-label": "log tail" });
  const result = h("pre", { class: "result", id: "job-result", tabindex: 0, "aria-label": "result" });
  const events = h("ol", { class: "events", "aria-label": "warnings" });
  main.append(
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("h1", {}, jobId),
    head,
    h("section", { class: "panel" }, h("h2", {}, "Result"), result),
    h("section", { class: "panel" }, h("h2", {}, "Warnings"), events),
    h("section", { class: "panel" }, h("h2", {}, "Log tail"), log),
  );

  async function load() {
    let job;
    try {
      job = await api(`/training/jobs/${encodeURIComponent(jobId)}/progress`);
    } catch (error) {
      fill(head, h("p", { class: "form-error" }, error.message));
      return;
    }
    if (!alive) return;
    lj?.close();
    lj = new LiveJob(job, (event, data) => {
      if (event === "warning" && events.children.length < 200) events.append(h("li", {}, data.message || data.reason || JSON.stringify(data)));
      if (event === "end") setTimeout(load, 200);
      status.textContent = lj.job.status;
    });
    const status = h("span", { class: `badge status-${job.status}`, id: "job-status" }, job.status);
    fill(head, 
      h("dl", { class: "kv" }, h("dt", {}, "Kind"), h("dd", {}, job.kind), h("dt", {}, "Dataset"), h("dd", {}, job.dataset || "—"), h("dt", {}, "Status"), h("dd", {}, status), h("dt", {}, "Created"), h("dd", {}, job.created_at || "—"), h("dt", {}, "Finished"), h("dd", {}, job.finished_at || "—")),
      h("div", { class: "progress-cell big" }, lj.bar, lj.label),
      h("p", {}, "Rate: ", lj.rateCell, " · Remaining: ", lj.etaCell),
      h("div", { class: "buttons" }, jobButtons(job, () => setTimeout(load, 300))),
      job.error ? h("p", { class: "form-error" }, job.error) : null,
    );
    result.textContent = job.result ? JSON.stringify(job.result, null, 2) : "(none yet)";
    lj.watch();
    tailLog();
  }

  async function tailLog() {
    clearTimeout(logTimer);
    try {
      const data = await api(`/training/jobs/${encodeURIComponent(jobId)}/log?tail=100`);
      if (!alive) return;
      log.textContent = data.lines.join("\n") || "(empty)";
    } catch (error) {
      log.textContent = error.message;
    }
    if (alive && lj && ACTIVE.includes(lj.job.status)) logTimer = setTimeout(tailLog, 2000);
  }

  load();
  return () => {
    alive = false;
    clearTimeout(logTimer);
    lj?.close();
  };
}
