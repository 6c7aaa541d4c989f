// The service's API as the dashboard uses it: bearer token (kept in sessionStorage),
// problem+json errors, images loaded with the token, and resumable SSE streams.

const TOKEN_KEY = "cadvlm.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.field = problem.field || null;
  }
}

let askForToken = async () => {};
export function onUnauthorized(handler) {
  askForToken = handler;
}

function authHeaders() {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// One API call: JSON in and out. A 401 asks for the token once and tries again.
export async function api(path, { method = "GET", body, form, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = authHeaders();
    let payload;
    if (form) payload = form;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, { method, headers, body: payload, signal });
    if (resp.status === 401 && attempt < 3) {
      await askForToken(token.get() !== "");
      continue;
    }
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) throw new ApiError(resp.status, typeof data === "object" ? data : { detail: data });
    return data;
  }
}

// Images need the token too, which <img src> cannot send: fetch them, show a blob URL.
const blobUrls = new WeakMap();
const queue = [];
let inFlight = 0;
const MAX_IMAGE_FETCHES = 6;

export function loadImage(img, url) {
  img.dataset.src = url;
  queue.push(img);
  setTimeout(pump, 0); // once the caller has put the image in the page
}

function pump() {
  while (inFlight < MAX_IMAGE_FETCHES && queue.length) {
    const img = queue.shift();
    if (!img.isConnected) continue;
    const url = img.dataset.src;
    inFlight++;
    fetch(url, { headers: authHeaders() })
      .then((resp) => (resp.ok ? resp.blob() : Promise.reject(new Error(`HTTP ${resp.status}`))))
      .then((blob) => {
        if (img.dataset.src !== url) return;
        const old = blobUrls.get(img);
        if (old) URL.revokeObjectURL(old);
        const next = URL.createObjectURL(blob);
        blobUrls.set(img, next);
        img.src = next;
        img.classList.remove("broken");
      })
      .catch(() => {
        img.classList.add("broken");
        img.alt = `${img.alt} (not available)`;
      })
      .finally(() => {
        inFlight--;
        pump();
      });
  }
}

export const EVENT_NAMES = ["start", "progress", "warning", "metric", "result", "done", "log", "end"];

// A job's event stream: every event from the first (or `from`), then live. EventSource
// itself reconnects with Last-Event-ID when the server closes a stream early; when the
// connection fails outright, a new one starts after the last event seen.
export class JobStream {
  constructor(jobId, handler, { from = 0 } = {}) {
    this.jobId = jobId;
    this.handler = handler;
    this.lastId = from;
    this.closed = false;
    this.retries = 0;
    this.open();
  }

  open() {
    const params = new URLSearchParams();
    const t = token.get();
    if (t) params.set("access_token", t);
    if (this.lastId) params.set("last_event_id", String(this.lastId));
    const query = params.toString();
    const url = `/training/jobs/${encodeURIComponent(this.jobId)}/events${query ? `?${query}` : ""}`;
    const source = new EventSource(url);
    this.source = source;
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) this.lastId = Number(event.lastEventId) || this.lastId;
        this.retries = 0;
        let data = {};
        try {
          data = JSON.parse(event.data);
        } catch {
          data = { text: event.data };
        }
        if (name === "end") this.close();
        this.handler(name, data, this);
      });
    }
    source.onerror = () => {
      if (this.closed || source.readyState !== EventSource.CLOSED) return;
      const delay = Math.min(10000, 500 * 2 ** this.retries++);
      this.timer = setTimeout(() => !this.closed && this.open(), delay);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.source?.close();
  }
}
