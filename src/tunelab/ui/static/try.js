// The Try page: predictions with probabilities and explanations for typed texts (or the
// workspace's image and audio files), a chat with a causal model, and batch predictions of a
// file to download.
"use strict";

TL.pages = TL.pages || {};

TL.pages.try = async function (root) {
  const { el } = TL;
  const runs = (await TL.api("GET", "/api/runs")).filter((r) => r.status === "finished");
  const chosen = TL.state.get("try", runs.length ? runs[0].path : "");
  const picker = el("select", { id: "try-run", "data-key": "run" },
    runs.map((r) => el("option", { value: r.path, selected: r.path === chosen },
      `${r.name} (${r.task}${r.value !== null ? `, ${r.metric} ${TL.number(r.value)}` : ""})`)));
  const body = el("div", { id: "try-body" });
  root.replaceChildren(el("h1", {}, "Try"),
    runs.length
      ? el("div", { class: "row" }, el("label", { for: "try-run" }, "Finished run"), picker,
        el("div", { class: "error", hidden: true, "data-error-for": "run" }))
      : el("p", { class: "muted" }, "No finished run yet: train one first."),
    body);
  if (!runs.length) return;
  picker.addEventListener("change", () => { TL.state.set("try", picker.value); show(); });
  await show();

  async function show() {
    let facts;
    try {
      facts = await TL.api("GET", `/api/try/model?run=${encodeURIComponent(picker.value)}`);
    } catch (error) {
      body.replaceChildren();
      TL.showError(root, error);
      return;
    }
    body.replaceChildren(facts.chat ? chatBox(facts) : textsBox(facts), batchBox(facts));
  }

  function textsBox(facts) {
    const files = facts.inputs !== "text";  // an image or audio model reads workspace files
    const texts = el("textarea", { id: "try-texts", rows: 5, "data-key": "texts",
      placeholder: files ? `one ${facts.inputs} file per line, relative to the workspace`
        : "one text per line" });
    texts.value = TL.state.get("tryTexts", "");
    texts.addEventListener("input", () => TL.state.set("tryTexts", texts.value));
    const out = el("div", { id: "try-output" });
    const lines = () => texts.value.split("\n").filter((t) => t.trim());
    const [predict, predictNote] = TL.action("Predict", async () => {
      const found = await TL.api("POST", "/api/try/predict", { run: facts.run, texts: lines() });
      out.replaceChildren(TL.command(found.command), TL.predictionTable(found.records));
    }, { id: "predict", class: "primary" });
    const [explain, explainNote] = TL.action("Explain", async () => {
      const found = await TL.api("POST", "/api/try/explain", { run: facts.run, texts: lines() });
      const html = new DOMParser().parseFromString(found.html, "text/html");
      out.replaceChildren(TL.command(found.command),
        el("div", { id: "explanations" }, ...html.body.childNodes));
    }, { id: "explain", disabled: !facts.explains });
    return TL.section(files ? "Files" : "Texts", texts,
      el("div", { class: "error", hidden: true, "data-error-for": "texts" }),
      el("div", { class: "row" }, predict, predictNote, explain, explainNote),
      facts.explains ? null : el("p", { class: "muted" }, `${facts.task} models have no ` +
        "explanations."), out);
  }

  function chatBox(facts) {
    const messages = [];
    const log = el("div", { class: "chat", id: "chat-log" });
    const input = el("input", { type: "text", id: "chat-input", "data-key": "messages",
      placeholder: "your message" });
    const [send, sendNote] = TL.action("Send", async () => {
      if (!input.value.trim()) return;
      messages.push({ role: "user", content: input.value.trim() });
      log.append(el("p", { class: "you" }, input.value.trim()));
      input.value = "";
      const found = await TL.api("POST", "/api/try/chat", { run: facts.run, messages });
      messages.push({ role: "assistant", content: found.answer });
      log.append(el("p", { class: "model" }, found.answer || "(empty answer)"));
      commandBox.replaceChildren(TL.command(found.command));
    }, { id: "chat-send", class: "primary" });
    const commandBox = el("div");
    return TL.section("Chat", log, el("div", { class: "row" }, input, send, sendNote),
      el("div", { class: "error", hidden: true, "data-error-for": "messages" }), commandBox);
  }

  function batchBox(facts) {
    const files = el("select", { id: "batch-file", "data-key": "input" });
    const column = el("input", { type: "text", id: "batch-column", placeholder: "as in training" });
    const out = el("div", { id: "batch-output" });
    TL.api("GET", "/api/files").then((found) => files.replaceChildren(
      ...found.filter((f) => f.kind === "file").map((f) => el("option", { value: f.path }, f.path))));
    const [run, runNote] = TL.action("Predict the file", async () => {
      const found = await TL.api("POST", "/api/try/batch",
        { run: facts.run, path: files.value, text_column: column.value || null });
      out.replaceChildren(TL.command(found.command),
        el("p", { class: "ok" }, `${found.rows} predictions: `,
          el("a", { href: `/files/${found.output}?download=true`, id: "batch-download" },
            `download ${found.output}`)),
        TL.predictionTable(found.head));
    }, { id: "batch-run" });
    return TL.section("Batch predictions",
      el("div", { class: "row" }, el("label", { for: "batch-file" }, "File"), files,
        el("label", { for: "batch-column" }, "text column"), column, run, runNote),
      el("div", { class: "error", hidden: true, "data-error-for": "input" }), out);
  }
};

// Predictions as a table: the label, its score, and every class's probability as a bar.
TL.predictionTable = function (records) {
  const { el } = TL;
  const rows = records.map((r) => {
    const text = r.text !== undefined ? r.text : (r.source || r.path || "");
    const answer = r.label !== undefined ? r.label
      : (r.labels ? r.labels.join(", ") : (r.value !== undefined ? TL.number(r.value)
        : (r.entities ? r.entities.map((e) => `${e.text} (${e.label})`).join(", ")
          : (r.generated || r.prediction || JSON.stringify(r)))));
    const bars = Object.entries(r.probabilities || {}).map(([name, p]) =>
      el("div", { class: "prob" }, el("span", { class: "prob-name" }, name),
        el("span", { class: "prob-bar" }, el("span", { style: `width: ${Math.round(p * 100)}%` })),
        el("span", { class: "prob-value" }, TL.number(p, 3))));
    return [text, answer, r.score !== undefined ? TL.number(r.score, 3) : "", el("div", {}, bars)];
  });
  return TL.table(["text", "prediction", "score", "probabilities"], rows,
    { id: "predictions", class: "predictions" });
};
