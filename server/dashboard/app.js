// The dashboard's shell: hash routes, the token prompt, page lifetimes.
import { onUnauthorized, token } from "./api.js";
import * as datasets from "./datasets.js";
import * as dataset from "./dataset.js";
import * as jobs from "./jobs.js";
import * as training from "./training.js";

const ROUTES = [
  [/^#?\/?$/, datasets, "datasets"],
  [/^#\/datasets\/?$/, datasets, "datasets"],
  [/^#\/datasets\/([^/]+)$/, dataset, "datasets"],
  [/^#\/jobs\/?$/, jobs, "jobs"],
  [/^#\/jobs\/([^/]+)$/, jobs, "jobs"],
  [/^#\/training\/?$/, training, "training"],
  [/^#\/training\/([^/]+)$/, training, "training"],
];

const main = document.getElementById("main");
let cleanup = null;

function route() {
  const hash = location.hash || "#/datasets";
  const found = ROUTES.find(([re]) => re.test(hash)) || ROUTES[0];
  const [re, page, nav] = found;
  const params = (hash.match(re) || []).slice(1).map(decodeURIComponent);
  if (cleanup) cleanup();
  cleanup = null;
  main.replaceChildren();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.dataset.page = page.name;
  cleanup = page.render(main, ...params) || null;
  const heading = main.querySelector("h1");
  if (heading) {
    document.title = `${heading.textContent} · cadvlm`;
  }
}

// The token prompt: shown when a call gets 401; resolves once a token is entered.
const dialog = document.getElementById("token-dialog");
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token-input");
const tokenError = document.getElementById("token-error");
let waiting = null;

function onUnauthorizedHandler(hadToken) {
  if (!waiting) {
    waiting = new Promise((resolve) => {
      tokenError.textContent = hadToken ? "That token was refused; enter the service's API token." : "";
      dialog.showModal();
      tokenInput.focus();
      tokenForm.onsubmit = (event) => {
        event.preventDefault();
        token.set(tokenInput.value.trim());
        tokenInput.value = "";
        dialog.close();
        waiting = null;
        resolve();
      };
    });
  }
  return waiting;
}
onUnauthorized(onUnauthorizedHandler);
dialog.addEventListener("cancel", (event) => event.preventDefault());

document.getElementById("forget-token").addEventListener("click", () => {
  token.clear();
  if (needsToken) onUnauthorizedHandler(false).then(route);
  else route();
});

window.addEventListener("hashchange", route);
const needsToken = document.querySelector('meta[name="cadvlm-auth"]')?.content === "token";
if (needsToken && !token.get()) {
  const ask = new Promise((resolve) => {
    onUnauthorizedHandler(false).then(resolve);
  });
  ask.then(route);
} else {
  route();
}
