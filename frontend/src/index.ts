// Entry point loaded by TensorBoard's dynamic plugin loader: it imports this ES module inside an
// iframe (data/plugin_entry.html, whose <base> is data/plugin/lossdoctor/) and calls render().
import { App } from "./app";
import { setLogdirName } from "./card";
import { injectStyles } from "./styles";

let app: App | null = null;

/** Follow TensorBoard's own light/dark setting (it toggles `dark-mode` on its <body>) when the
 *  host page is reachable; otherwise `prefers-color-scheme` decides. */
function followHostTheme(onChange: () => void): void {
  let body: HTMLElement | null = null;
  try {
    if (window.parent && window.parent !== window) body = window.parent.document.body;
  } catch {
    body = null; // cross-origin host
  }
  if (!body) return;
  const host = body;
  const apply = () => {
    const theme = host.classList.contains("dark-mode") ? "dark" : "light";
    if (document.documentElement.getAttribute("data-ld-theme") !== theme) {
      document.documentElement.setAttribute("data-ld-theme", theme);
      onChange();
    }
  };
  apply();
  new MutationObserver(apply).observe(host, { attributes: true, attributeFilter: ["class"] });
}

export async function render(): Promise<void> {
  if (app) return;
  injectStyles(document);
  document.documentElement.lang = document.documentElement.lang || "en";
  if (!document.title) document.title = "Diagnosis";
  const a = new App(document.body);
  app = a;
  followHostTheme(() => a.rebuildCharts());
  // The report is asked for at once: on a large logdir its build starts with that request.
  await a.refresh(learnLogdirName());
}

/** TensorBoard's own environment route (relative, so `--path_prefix` holds) names the logdir. */
async function learnLogdirName(): Promise<void> {
  try {
    const res = await fetch("../../environment", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) return;
    const env = (await res.json()) as { data_location?: unknown };
    if (typeof env.data_location === "string") setLogdirName(env.data_location);
  } catch {
    /* the run "." keeps its name */
  }
}
