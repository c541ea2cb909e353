// The Runs page: every run of the workspace with its main metric, time and status; compare
// two or more (the config keys that differ, metrics side by side, curves on one chart).
"use strict";

TL.pages = TL.pages || {};

TL.pages.runs = async function (root) {
  const { el } = TL;
  const began = performance.now();
  const runs = await TL.api("GET", "/api/runs");
  const compareBox = el("div", { id: "compare" });
  const picked = new Set(TL.state.get("compare", []));

  const rows = runs.map((r) => {
    const box = el("input", { type: "checkbox", value: r.path, checked: picked.has(r.path),
      "aria-label": `compare ${r.name}` });
    box.addEventListener("change", () => {
      if (box.checked) picked.add(r.path); else picked.delete(r.path);
      TL.state.set("compare", [...picked]);
    });
    const name = r.job ? el("a", { href: `#run/${r.job}` }, r.name)
      : (r.report ? el("a", { href: r.report, target: "_blank" }, r.name) : r.name);
    const metric = r.metric ? `${r.split} ${r.metric}` : "";
    return [box, name, TL.status(r.status), r.task || "", r.model || "", metric,
      r.value === null || r.value === undefined ? "" : TL.number(r.value),
      TL.duration(r.seconds), r.finished ? r.finished.slice(0, 16).replace("T", " ") : "",
      r.error ? el("span", { class: "error-text", title: r.error }, r.error) : ""];
  });
  const [compare, compareNote] = TL.action("Compare selected", async () => {
    if (picked.size < 2) throw new Error("select two or more runs to compare");
    const query = [...picked].map((p) => `run=${encodeURIComponent(p)}`).join("&");
    showComparison(await TL.api("GET", `/api/runs/compare?${query}`));
  }, { id: "compare-button" });

  root.replaceChildren(
    el("h1", {}, "Runs"),
    TL.command("tunelab runs runs"),
    runs.length
      ? el("div", { class: "scroll" }, TL.table(["", "run", "status", "task", "model", "metric",
        "value", "train time", "finished", "error"], rows, { id: "runs-table" }))
      : el("p", { class: "muted" }, "No runs yet: start one on the Train page."),
    el("div", { class: "row" }, compare, compareNote),
    compareBox);
  // what benchmarks/ui_runs_list.py reads: this page's own time, and the time since the
  // navigation began (performance.now()'s origin)
  root.dataset.loadMs = String(Math.round(performance.now() - began));
  root.dataset.drawnAt = String(Math.round(performance.now()));
  root.dataset.runs = String(runs.length);

  function showComparison(found) {
    const config = Object.entries(found.config).map(([key, values]) =>
      [el("code", {}, key), ...values.map((v) => (v === null ? "–" : JSON.stringify(v)))]);
    const metrics = Object.entries(found.metrics).map(([key, values]) => {
      const best = new Set(found.best[key] || []);
      return [el("code", {}, key), ...values.map((v, i) =>
        el("span", { class: best.has(i) ? "best" : "" }, TL.number(v)))];
    });
    const loss = el("canvas", { class: "chart", id: "compare-loss" });
    const metric = el("canvas", { class: "chart", id: "compare-metric" });
    compareBox.replaceChildren(
      TL.section("Comparison", TL.command(found.command),
        el("h3", {}, "Config keys that differ"),
        config.length ? TL.table(["key", ...found.runs], config, { id: "compare-config" })
          : el("p", { class: "muted" }, "none: the same config"),
        el("h3", {}, "Metrics (best in bold)"),
        TL.table(["metric", ...found.runs], metrics, { id: "compare-metrics" }),
        el("div", { class: "charts" },
          el("div", {}, el("h3", {}, "Training loss"), loss),
          el("div", {}, el("h3", {}, "Validation metric"), metric))));
    TL.chart(loss, found.curves.map((c, i) => ({ name: found.runs[i], points: c.loss })),
      { xLabel: "step", empty: "no logged loss (history.json)" });
    // the main metric of the first compared run (as the table lists it), else any evaluated one
    const main = (runs.find((r) => r.path === found.paths[0]) || {}).metric;
    const first = found.curves.some((c) => c.eval[main]) ? main
      : found.curves.map((c) => Object.keys(c.eval).find((k) => k !== "loss")).find(Boolean);
    TL.chart(metric, found.curves.map((c, i) => ({
      name: `${found.runs[i]} ${first || ""}`, points: (first && c.eval[first]) || [] })),
    { xLabel: "step", empty: "no evaluations (history.json)" });
  }
};
