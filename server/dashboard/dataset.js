// One dataset: its stages, the extraction manifest's counts, the validation report and a
// paged gallery of its records (thumbnail, prompt, OpenECAD answer).
import { api, loadImage } from "./api.js";
import { fill, fmtNumber, h, keyValues } from "./dom.js";

export const name = "dataset";
const PAGE = 12;

function turns(record) {
  const conv = record.conversations || [];
  const human = conv.find((t) => t.from === "human")?.value || "";
  const answer = conv.find((t) => t.from === "gpt")?.value || "";
  return { prompt: human.replace(/^<image>\n?/, ""), answer };
}

export function render(main, ds) {
  const enc = encodeURIComponent(ds);
  let alive = true;
  const summary = h("section", { class: "panel", "aria-labelledby": "summary-title" }, h("h2", { id: "summary-title" }, "Status"), h("p", { class: "muted" }, "Loading…"));
  const manifest = h("section", { class: "panel", "aria-labelledby": "manifest-title" }, h("h2", { id: "manifest-title" }, "Extraction"));
  const validation = h("section", { class: "panel", id: "validation-report", "aria-labelledby": "validation-title" }, h("h2", { id: "validation-title" }, "Validation report"));
  const gallery = h("div", { class: "gallery", id: "gallery" });
  const pageInfo = h("span", { class: "muted", "aria-live": "polite" });
  const split = h("select", { id: "split-select", name: "split" }, h("option", { value: "train" }, "train"), h("option", { value: "val" }, "val"));
  const prev = h("button", { type: "button", onclick: () => page(offset - PAGE) }, "Previous");
  const next = h("button", { type: "button", onclick: () => page(offset + PAGE) }, "Next");
  let offset = 0;
  let total = 0;
  split.addEventListener("change", () => page(0));

  main.append(
    h("p", {}, h("a", { href: "#/datasets" }, "← Datasets")),
    h("h1", {}, ds),
    h("div", { class: "grid2" }, summary, manifest),
    validation,
    h(
      "section",
      { class: "panel", "aria-labelledby": "gallery-title" },
      h("h2", { id: "gallery-title" }, "Records"),
      h("div", { class: "pager" }, h("label", { for: "split-select" }, "Split"), split, prev, next, pageInfo),
      gallery,
    ),
  );

  async function page(to) {
    offset = Math.max(0, to);
    let data;
    try {
      data = await api(`/training/datasets/${enc}/records?split=${split.value}&offset=${offset}&limit=${PAGE}`);
    } catch (error) {
      fill(gallery, h("p", { class: "form-error" }, error.message));
      return;
    }
    if (!alive) return;
    total = data.total;
    prev.disabled = offset === 0;
    next.disabled = offset + PAGE >= total;
    pageInfo.textContent = data.converted ? `${total ? offset + 1 : 0}–${Math.min(offset + PAGE, total)} of ${fmtNumber(total)}` : "not converted yet";
    fill(gallery, 
      ...data.records.map((record) => {
        const { prompt, answer } = turns(record);
        const img = h("img", { alt: `${record.image} of record ${record.id}`, width: 128, height: 128 });
        loadImage(img, `/training/datasets/${enc}/thumbnails/${encodeURIComponent(record.image)}?size=128`);
        return h(
          "article",
          { class: "record" },
          h("figure", {}, img, h("figcaption", {}, record.image)),
          h("div", { class: "record-text" }, h("p", { class: "prompt" }, h("strong", {}, "Prompt: "), prompt), h("pre", { class: "answer", tabindex: 0, "aria-label": `answer of ${record.id}` }, answer)),
        );
      }),
    );
  }

  async function reports() {
    try {
      const [status, report] = await Promise.all([api(`/training/datasets/${enc}/status`), api(`/training/datasets/${enc}/report`)]);
      if (!alive) return;
      fill(summary, 
        h("h2", { id: "summary-title" }, "Status"),
        keyValues({ status: status.status, ...status.stages, models: status.models, images: status.images, conversations: status.conversations, size: status.size }),
      );
      const m = report.manifest || {};
      const counts = m.counts || {};
      const reasons = counts.skipped || {};
      fill(manifest, 
        h("h2", { id: "manifest-title" }, "Extraction"),
        keyValues({ source: m.source?.kind, seed: m.seed, train: counts.train, val: counts.val, checked: counts.checked, replaced: counts.replaced, duplicates_dropped: counts.duplicates_dropped }),
        h("h3", {}, "Replaced models, by reason"),
        Object.keys(reasons).length ? keyValues(reasons) : h("p", { class: "muted" }, "none"),
      );
      const v = report.validation;
      if (!v) {
        fill(validation, h("h2", { id: "validation-title" }, "Validation report"), h("p", { class: "muted" }, "Not validated yet."));
      } else {
        const problems = v.problems || [];
        fill(validation, 
          h("h2", { id: "validation-title" }, "Validation report"),
          h("p", { class: v.valid ? "ok" : "form-error" }, v.valid ? "Valid: no problems." : `${fmtNumber(v.problems_total)} problems.`),
          h("div", { class: "grid2" }, h("div", {}, h("h3", {}, "Checks"), keyValues(v.validation)), h("div", {}, h("h3", {}, "Problems by check"), Object.keys(v.problem_counts || {}).length ? keyValues(v.problem_counts) : h("p", { class: "muted" }, "none"))),
          h("details", {}, h("summary", {}, "Stats"), keyValues(v.stats)),
          v.warnings?.length ? h("details", {}, h("summary", {}, `${v.warnings.length} warnings`), h("ul", {}, v.warnings.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w))))) : null,
          problems.length
            ? h(
                "div",
                { class: "table-wrap" },
                h("table", { class: "problems" }, h("thead", {}, h("tr", {}, ["Check", "Record", "Detail"].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, problems.map((p) => h("tr", {}, h("td", {}, p.check), h("td", {}, p.record), h("td", {}, p.detail))))),
              )
            : null,
        );
      }
    } catch (error) {
      fill(summary, h("h2", { id: "summary-title" }, "Status"), h("p", { class: "form-error" }, error.message));
    }
  }

  reports();
  page(0);
  return () => {
    alive = false;
  };
}
