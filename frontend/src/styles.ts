// All CSS of the tab, injected as <style> elements created from JS (TensorBoard's CSP allows
// inline styles but not inline scripts or external hosts).
import uplotCss from "uplot/dist/uPlot.min.css";

const DARK = `
    --ld-bg: #202124;
    --ld-card: #2d2e31;
    --ld-card-hover: #35363a;
    --ld-border: #45474b;
    --ld-text: #e8eaed;
    --ld-muted: #a9adb3;
    --ld-accent: #ff9800;
    --ld-accent-text: #ffb74d;
    --ld-focus: #ffb74d;
    --ld-input-bg: #303134;
    --ld-error: #ff8a80;
    --ld-error-bg: #4a2326;
    --ld-warning: #ffcc80;
    --ld-warning-bg: #47361c;
    --ld-info: #90caf9;
    --ld-info-bg: #1e3447;
    --ld-ok: #a5d6a7;
    --ld-ok-bg: #23392a;
    --ld-chart-grid: rgba(255,255,255,0.10);
    --ld-chart-axis: #a9adb3;
    --ld-train: #ffa726;
    --ld-val: #64b5f6;
    --ld-shade: rgba(255,167,38,0.16);
    --ld-marker: #ff8a80;
    color-scheme: dark;
`;

const css = `
:root {
  --ld-bg: #ffffff;
  --ld-card: #f5f5f5;
  --ld-card-hover: #eeeeee;
  --ld-border: #e0e0e0;
  --ld-text: #212121;
  --ld-muted: #616161;
  --ld-accent: #f57c00;
  --ld-accent-text: #e65100;
  --ld-focus: #b35900; /* 4.8:1 on white, 4.4:1 on the cards */
  --ld-input-bg: #ffffff;
  --ld-error: #c62828;
  --ld-error-bg: #ffebee;
  --ld-warning: #8a4b00;
  --ld-warning-bg: #fff3e0;
  --ld-info: #1565c0;
  --ld-info-bg: #e3f2fd;
  --ld-ok: #2e7d32;
  --ld-ok-bg: #e8f5e9;
  --ld-chart-grid: rgba(0,0,0,0.08);
  --ld-chart-axis: #616161;
  --ld-train: #f57c00;
  --ld-val: #1976d2;
  --ld-shade: rgba(245,124,0,0.13);
  --ld-marker: #c62828;
  color-scheme: light;
}
@media (prefers-color-scheme: dark) {
  :root:not([data-ld-theme="light"]) {${DARK}  }
}
:root[data-ld-theme="dark"] {${DARK}}
html, body { margin: 0; padding: 0; background: var(--ld-bg); color: var(--ld-text); }
body {
  font-family: Roboto, "Helvetica Neue", Arial, system-ui, -apple-system, "Segoe UI", sans-serif;
  font-size: 14px; line-height: 20px;
}
.ld-root { padding: 16px 24px 48px; max-width: 1200px; margin: 0 auto; box-sizing: border-box; }
.ld-root [hidden] { display: none !important; }
.ld-root *, .ld-root *::before, .ld-root *::after { box-sizing: border-box; }
.ld-root button, .ld-root input, .ld-root select { font: inherit; color: inherit; }
.ld-root :focus-visible { outline: 2px solid var(--ld-focus); outline-offset: 2px; }
.icon { width: 16px; height: 16px; flex: none; vertical-align: -3px; }
.ld-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

/* header */
.ld-header { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; margin-bottom: 8px; }
.ld-title { font-size: 20px; line-height: 28px; font-weight: 500; margin: 0; }
.ld-summary { margin: 0 0 16px; color: var(--ld-text); }
.ld-summary .ld-count { font-weight: 500; }
.ld-summary .ld-sev { white-space: nowrap; }
.ld-summary .ld-sev .icon { margin-right: 4px; }
.ld-meta { color: var(--ld-muted); font-size: 12px; margin-left: auto; display: flex; align-items: center; gap: 8px; }
.ld-btn {
  display: inline-flex; align-items: center; gap: 4px; padding: 4px 12px; min-height: 32px;
  background: transparent; border: 1px solid var(--ld-border); border-radius: 4px; cursor: pointer;
}
.ld-btn:hover { background: var(--ld-card-hover); }
.ld-btn[aria-pressed="true"] { border-color: var(--ld-accent); color: var(--ld-accent-text); }
.ld-btn-accent { color: var(--ld-accent-text); border-color: var(--ld-accent); }

/* filters */
.ld-filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 8px 0 16px;
  border-bottom: 1px solid var(--ld-border); margin-bottom: 16px; }
.ld-field { display: flex; align-items: center; gap: 8px; }
.ld-field label { color: var(--ld-muted); }
.ld-input, .ld-select {
  background: var(--ld-input-bg); border: 1px solid var(--ld-border); border-radius: 4px;
  padding: 4px 8px; min-height: 32px;
}
.ld-input { width: 280px; max-width: 60vw; }
.ld-input:focus, .ld-select:focus { border-color: var(--ld-accent); }
.ld-input[aria-invalid="true"] { border-color: var(--ld-error); }
.ld-filter-error { color: var(--ld-error); font-size: 12px; display: flex; align-items: center; gap: 4px; }
.ld-check { display: inline-flex; align-items: center; gap: 8px; cursor: pointer; }
.ld-check input { accent-color: var(--ld-accent); width: 16px; height: 16px; margin: 0; }
.ld-shown { color: var(--ld-muted); font-size: 12px; }

/* notices */
.ld-notice { border: 1px solid var(--ld-border); border-left: 4px solid var(--ld-accent); background: var(--ld-card);
  border-radius: 4px; padding: 8px 16px; margin-bottom: 16px; }
.ld-notice p { margin: 4px 0; }
.ld-notice code, .ld-empty code { font-family: "Roboto Mono", Menlo, Consolas, monospace; font-size: 13px;
  background: var(--ld-card-hover); padding: 0 4px; border-radius: 2px; }
.ld-empty { text-align: left; padding: 24px; border: 1px dashed var(--ld-border); border-radius: 4px; margin: 16px 0; }
.ld-empty h2 { font-size: 16px; font-weight: 500; margin: 0 0 8px; }
.ld-empty p { margin: 8px 0; color: var(--ld-muted); }
.ld-empty ul { margin: 8px 0; padding-left: 24px; color: var(--ld-muted); }
.ld-error-box { border-left-color: var(--ld-error); }
.ld-problems { margin-bottom: 16px; border: 1px solid var(--ld-border); border-radius: 4px; background: var(--ld-card); }
.ld-problems > summary { padding: 8px 16px; cursor: pointer; font-weight: 500; }
.ld-problems ul { margin: 0; padding: 0 16px 8px 40px; max-height: 240px; overflow: auto; }
.ld-problems li { margin: 4px 0; overflow-wrap: anywhere; }
.ld-problems .ld-reason { color: var(--ld-muted); }

/* badges */
.ld-badge { display: inline-flex; align-items: center; gap: 4px; padding: 0 8px; border-radius: 12px;
  font-size: 12px; font-weight: 500; line-height: 22px; white-space: nowrap; border: 1px solid transparent; }
.ld-badge-error { color: var(--ld-error); background: var(--ld-error-bg); border-color: var(--ld-error); }
.ld-badge-warning { color: var(--ld-warning); background: var(--ld-warning-bg); border-color: var(--ld-warning); }
.ld-badge-info { color: var(--ld-info); background: var(--ld-info-bg); border-color: var(--ld-info); }
.ld-badge-ok { color: var(--ld-ok); background: var(--ld-ok-bg); border-color: var(--ld-ok); }
.ld-sev-error { color: var(--ld-error); }
.ld-sev-warning { color: var(--ld-warning); }
.ld-sev-info { color: var(--ld-info); }
.ld-sev-ok { color: var(--ld-ok); }

/* cards */
.ld-list { display: flex; flex-direction: column; gap: 8px; }
.ld-card { background: var(--ld-card); border: 1px solid var(--ld-border); border-radius: 4px; }
.ld-card-status-error { border-left: 4px solid var(--ld-error); }
.ld-card-status-warning { border-left: 4px solid var(--ld-warning); }
.ld-card-status-ok { border-left: 4px solid var(--ld-ok); }
.ld-card-head { display: flex; align-items: center; gap: 8px; width: 100%; padding: 8px 16px; min-height: 48px;
  background: transparent; border: 0; text-align: left; cursor: pointer; border-radius: 4px; }
.ld-card-head:hover { background: var(--ld-card-hover); }
.ld-chevron { transition: transform 120ms ease; color: var(--ld-muted); }
[aria-expanded="true"] > .ld-chevron { transform: rotate(90deg); }
.ld-run { font-weight: 500; overflow-wrap: anywhere; flex: 1 1 auto; min-width: 0; }
.ld-since { color: var(--ld-muted); font-size: 12px; white-space: nowrap; }
.ld-new { font-size: 12px; font-weight: 600; padding: 1px 6px; border-radius: 8px; white-space: nowrap;
  background: var(--ld-focus); color: var(--ld-bg); } /* 4.8:1 light, 7.9:1 dark */
.ld-new[hidden] { display: none; }
.ld-verdict { flex: 2 1 auto; min-width: 0; font-size: 13px; overflow-wrap: anywhere; }
.ld-card-counts { color: var(--ld-muted); font-size: 12px; white-space: nowrap; }
.ld-card-body { padding: 0 16px 8px 40px; }
.ld-card-body[hidden] { display: none; }
.ld-series-list { color: var(--ld-muted); font-size: 12px; margin: 0 0 8px; overflow-wrap: anywhere; }
.ld-note { color: var(--ld-muted); font-size: 12px; margin: 4px 0 8px; display: flex; gap: 4px; align-items: flex-start; }
.ld-findings { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 8px; }
.ld-finding { border-top: 1px solid var(--ld-border); padding-top: 8px; }
.ld-finding:first-child { border-top: 0; padding-top: 0; }
.ld-finding-head { display: flex; align-items: flex-start; gap: 8px; width: 100%; padding: 4px 8px; margin-left: -8px;
  background: transparent; border: 0; text-align: left; cursor: pointer; border-radius: 4px; }
.ld-finding-head:hover { background: var(--ld-card-hover); }
.ld-finding-head .ld-chevron { margin-top: 2px; }
.ld-finding-main { flex: 1 1 auto; min-width: 0; }
.ld-finding-title { font-weight: 500; display: block; overflow-wrap: anywhere; }
.ld-finding-summary { display: block; color: var(--ld-muted); margin-top: 2px; overflow-wrap: anywhere; }
.ld-finding-step { display: block; font-size: 12px; color: var(--ld-muted); margin-top: 2px; }
.ld-code { font-family: "Roboto Mono", Menlo, Consolas, monospace; font-size: 12px; color: var(--ld-muted); }
.ld-finding-detail { padding: 8px 0 8px 24px; }
.ld-finding-detail[hidden] { display: none; }
.ld-advice-title { font-weight: 500; margin: 8px 0 4px; }
.ld-advice { margin: 0; padding-left: 20px; }
.ld-advice li { margin: 2px 0; }

/* chart */
.ld-chart-box { background: var(--ld-bg); border: 1px solid var(--ld-border); border-radius: 4px; padding: 8px; }
.ld-chart-tools { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; margin-bottom: 4px; font-size: 12px; }
.ld-chart-tools .ld-btn { min-height: 28px; padding: 2px 8px; font-size: 12px; }
.ld-chart-legend-note { color: var(--ld-muted); }
.ld-readout { font-family: "Roboto Mono", Menlo, Consolas, monospace; font-size: 12px; min-height: 20px; color: var(--ld-text);
  white-space: pre-wrap; overflow-wrap: anywhere; }
.ld-chart-msg { color: var(--ld-muted); padding: 16px 0; }
.ld-chart { width: 100%; min-height: 40px; }
.ld-chart .u-legend { display: none; }
.ld-swatch { display: inline-block; width: 20px; height: 0; border-top: 2px solid; vertical-align: middle; margin-right: 4px; }
.ld-swatch-dashed { border-top-style: dashed; }
.ld-chart-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; margin-top: 4px; }
.ld-chart-legend span { overflow-wrap: anywhere; }

.ld-more { display: flex; justify-content: center; padding: 16px; }
.ld-sentinel { height: 1px; }
`;

export function injectStyles(doc: Document): void {
  if (doc.getElementById("lossdoctor-styles")) return;
  const a = doc.createElement("style");
  a.id = "lossdoctor-uplot-styles";
  a.textContent = uplotCss;
  const b = doc.createElement("style");
  b.id = "lossdoctor-styles";
  b.textContent = css;
  doc.head.appendChild(a);
  doc.head.appendChild(b);
}
