// The Run page: live progress and charts from the job's server-sent events, the log tail,
// cancel (a checkpoint is saved) and resume; the run's report.html once it has finished.
"use strict";

TL.pages = TL.pages || {};

TL.pages.run = async function (root, id) {
  const { el } = TL;
  let job = await TL.api("GET", `/api/jobs/${id}`);
  let source = null;
  let logTimer = null;
  let lastSeq = 0;
  const series = { loss: [], evalLoss: [], metrics: {}, main: null };
  const progress = { step: 0, max_steps: 0 };

  const statusBox = el("span", { id: "job-status" });
  const stageBox = el("p", { id: "job-stage", class: "muted" });
  const bar = el("div", { class: "bar-fill", id: "progress-fill" });
  const barText = el("span", { id: "progress-percent" }, "0%");
  const factsBox = el("p", { id: "progress-facts", class: "facts" }, "waiting for the first step");
  const lossCanvas = el("canvas", { id: "loss-chart", class: "chart" });
  const metricCanvas = el("canvas", { id: "metric-chart", class: "chart" });
  const metricTitle = el("h2", {}, "Validation metric");
  const errorBox = el("p", { id: "job-error", class: "error", hidden: true, role: "alert" });
  const logBox = el("pre", { id: "job-log", class: "log" });
  const reportBox = el("div", { id: "job-report" });
  const [cancel, cancelNote] = TL.action("Cancel (saves a checkpoint)", async () => {
    update(await TL.api("POST", `/api/jobs/${id}/cancel`));
  }, { id: "cancel" });
  const [resume, resumeNote] = TL.action("Resume", async () => {
    update(await TL.api("POST", `/api/jobs/${id}/resume`));
    listen();
  }, { id: "resume" });

  root.replaceChildren(
    el("h1", {}, "Run ", el("code", {}, job.output), " ", statusBox),
    TL.command(job.command),
    TL.section("Progress",
      el("div", { class: "bar" }, bar, barText), factsBox, stageBox, errorBox,
      el("div", { class: "row" }, cancel, cancelNote, resume, resumeNote)),
    el("div", { class: "charts" },
      TL.section("Loss", lossCanvas),
      el("section", { class: "card" }, metricTitle, metricCanvas)),
    TL.section("Log (last lines)", logBox),
    reportBox);

  function update(state) {
    job = state;
    statusBox.replaceChildren(TL.status(job.status));
    cancel.hidden = !["queued", "running"].includes(job.status);
    resume.hidden = !job.resumable;
    if (job.error) {
      errorBox.textContent = job.error;
      errorBox.hidden = false;
    } else {
      errorBox.hidden = true;
    }
    if (job.status === "finished") {
      setPercent(100);
      stageBox.textContent = "finished";
    }
    if (job.report && !reportBox.dataset.shown) {
      reportBox.dataset.shown = "yes";
      reportBox.replaceChildren(TL.section("Report",
        el("p", {}, el("a", { href: job.report, target: "_blank", id: "report-link" },
          "open report.html in its own tab")),
        el("iframe", { src: job.report, class: "report", id: "report-frame",
          title: "the run's report.html",
          onload: (event) => { event.target.dataset.loaded = "yes"; } })));
    }
  }

  function setPercent(percent) {
    bar.style.width = `${percent}%`;
    barText.textContent = `${Math.floor(percent)}%`;
    root.dataset.percent = String(Math.floor(percent));
  }

  function draw() {
    TL.chart(lossCanvas, [
      { name: "training loss", points: series.loss },
      { name: "validation loss", points: series.evalLoss, dashed: true },
    ], { xLabel: "step", empty: "the loss appears at the first logging step" });
    // the metric that picks the best checkpoint, and accuracy beside it where there is one
    const shown = Object.entries(series.metrics).filter(([name]) =>
      name === series.main || (name === "accuracy" && series.main !== "accuracy"));
    metricTitle.textContent = series.main ? `Validation ${series.main}` : "Validation metric";
    TL.chart(metricCanvas, shown.map(([name, points]) => ({ name, points })),
      { xLabel: "step", empty: "metrics appear at the first evaluation" });
  }

  const handlers = {
    stage(data) { stageBox.textContent = data.text; },
    start(data) {
      progress.max_steps = data.max_steps;
      series.main = data.metric === "loss" ? null : data.metric;
    },
    progress(data) {
      Object.assign(progress, data);
      const percent = data.max_steps ? (100 * data.step) / data.max_steps : 0;
      setPercent(job.status === "finished" ? 100 : Math.min(percent, 100));
      const facts = [`step ${data.step} / ${data.max_steps}`, `epoch ${TL.number(data.epoch, 2)}`,
        `ETA ${TL.duration(data.eta)}`, `elapsed ${TL.duration(data.elapsed)}`];
      if (data.samples_per_second) facts.push(`${TL.number(data.samples_per_second, 1)} samples/s`);
      if (data.steps_per_second) facts.push(`${TL.number(data.steps_per_second, 2)} steps/s`);
      factsBox.textContent = facts.join(" · ");
    },
    log(data) {
      if (typeof data.loss === "number") series.loss.push([data.step, data.loss]);
      if (typeof data.eval_loss === "number") series.evalLoss.push([data.step, data.eval_loss]);
      for (const [key, value] of Object.entries(data)) {
        if (!key.startsWith("eval_") || key === "eval_loss" || typeof value !== "number") continue;
        if (/_(runtime|per_second)$/.test(key)) continue;
        (series.metrics[key.slice(5)] = series.metrics[key.slice(5)] || []).push([data.step, value]);
      }
      draw();
    },
    end(data) { stageBox.textContent = data.status; },
  };

  function listen() {
    if (source) source.close();
    source = new EventSource(`/api/jobs/${id}/events?after=${lastSeq}`);
    for (const kind of Object.keys(handlers)) {
      source.addEventListener(kind, (event) => {
        lastSeq = Math.max(lastSeq, Number(event.lastEventId) || 0);
        handlers[kind](JSON.parse(event.data));
      });
    }
    source.addEventListener("done", (event) => {
      source.close();
      source = null;
      update(JSON.parse(event.data));
      tail();
    });
    clearInterval(logTimer);
    logTimer = setInterval(tail, 2000);
  }

  async function tail() {
    try {
      const found = await TL.api("GET", `/api/jobs/${id}/log?lines=60`);
      logBox.textContent = found.lines.join("\n") || "(nothing logged yet)";
      logBox.scrollTop = logBox.scrollHeight;
    } catch (error) {
      logBox.textContent = error.message;
    }
    if (!source) clearInterval(logTimer);
  }

  update(job);
  draw();
  listen();
  tail();
  return () => {
    if (source) source.close();
    clearInterval(logTimer);
  };
};
