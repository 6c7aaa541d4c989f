// Tiny DOM helpers: elements from data (never HTML strings), forms to JSON bodies, and
// problem+json errors shown beside the field they name.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldIds = 0;

// A labelled control with a slot for its error. spec: {name, label, type, value, options, ...}
export function field(spec) {
  const id = `f${++fieldIds}`;
  const { name, label, type = "text", value, options, help, ...rest } = spec;
  let control;
  if (type === "select") {
    control = h("select", { id, name, ...rest }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
  } else if (type === "checkbox") {
    control = h("input", { id, name, type, checked: Boolean(value), ...rest });
  } else {
    control = h("input", { id, name, type, value: value ?? "", ...rest });
  }
  const error = h("span", { class: "field-error", id: `${id}-error`, role: "alert", dataset: { errorFor: name } });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { class: `field field-${type}` }, h("label", { for: id }, label), control, help ? h("small", {}, help) : null, error);
}

// Views chosen with checkboxes: a fieldset whose legend labels it.
export function checkboxGroup(name, legend, options, checked) {
  return h(
    "fieldset",
    { class: "field checkbox-group" },
    h("legend", {}, legend),
    options.map((o) => {
      const id = `f${++fieldIds}`;
      return h("span", { class: "check" }, h("input", { type: "checkbox", id, name, value: o, checked: checked.includes(o) }), h("label", { for: id }, o));
    }),
    h("span", { class: "field-error", role: "alert", dataset: { errorFor: name } }),
  );
}

// The form's values as a JSON body: numbers as numbers, empty fields left out, checkbox
// groups as lists, dotted names ("config.epochs") as nested objects.
export function formBody(form) {
  const body = {};
  const set = (path, value) => {
    const parts = path.split(".");
    let obj = body;
    for (const p of parts.slice(0, -1)) obj = obj[p] ??= {};
    obj[parts.at(-1)] = value;
  };
  const groups = new Set([...form.querySelectorAll("fieldset.checkbox-group input")].map((i) => i.name));
  for (const el of form.elements) {
    if (!el.name || groups.has(el.name)) continue;
    if (el.type === "checkbox") set(el.name, el.checked);
    else if (el.type === "file") continue;
    else if (el.value === "") continue;
    else if (el.type === "number") set(el.name, Number(el.value));
    else set(el.name, el.value);
  }
  for (const name of groups) {
    set(name, [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value));
  }
  return body;
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error, .form-error")) e.textContent = "";
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

// Show an error beside the field it names ("views.0" is the views field), else on the form.
export function showError(form, error) {
  clearErrors(form);
  const name = error.field || "";
  const slots = [...form.querySelectorAll(".field-error")];
  const slot = slots
    .filter((s) => name === s.dataset.errorFor || name.startsWith(`${s.dataset.errorFor}.`))
    .sort((a, b) => b.dataset.errorFor.length - a.dataset.errorFor.length)[0];
  const target = slot || form.querySelector(".form-error");
  target.textContent = error.message;
  const control = slot && form.querySelector(`[name="${slot.dataset.errorFor}"]`);
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

export function fmtNumber(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en");
  return String(+v.toPrecision(digits));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function keyValues(obj) {
  return h(
    "dl",
    { class: "kv" },
    Object.entries(obj || {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : fmtNumber(v))]),
  );
}

export function notify(message) {
  const box = document.getElementById("status");
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => box.classList.remove("shown"), 6000);
}

// Submit a form to the API: errors beside their fields, the button busy meanwhile.
export async function submitForm(form, call) {
  const button = form.querySelector("button[type=submit]");
  clearErrors(form);
  form.setAttribute("aria-busy", "true");
  if (button) button.disabled = true;
  try {
    return await call();
  } catch (error) {
    showError(form, error);
    return undefined;
  } finally {
    form.removeAttribute("aria-busy");
    if (button) button.disabled = false;
  }
}

// replaceChildren, leaving out the nulls a conditional child gives (which it would print).
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}
