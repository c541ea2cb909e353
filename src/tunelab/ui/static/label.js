// The Label page: `tunelab label run` in the browser. Pick a file of texts and a label set,
// then label one text at a time (keys 1-9 pick a label, s skips, u undoes); every answer is
// in the journal beside the data before the next text shows, shared with the CLI.
"use strict";

TL.pages = TL.pages || {};

TL.pages.label = async function (root) {
  const { el } = TL;
  const chosen = TL.state.get("label", { path: "", labels: "" });
  const picker = el("select", { id: "label-file", "data-key": "path" });
  const labelSet = el("input", { type: "text", id: "label-set", "data-key": "labels",
    placeholder: "positive,negative", value: chosen.labels || "" });
  const annotator = el("input", { type: "text", id: "label-annotator", "data-key": "annotator",
    placeholder: "me", size: 10, value: chosen.annotator || "" });
  const [start, startNote] = TL.action("Start labelling", () => open(), {
    id: "label-start", class: "primary" });
  const work = el("div", { id: "label-work" });
  let session = null; // the last answer of the server: the text shown, progress, files
  let busy = false;

  root.replaceChildren(
    el("h1", {}, "Label"),
    TL.section("1. Texts and labels",
      el("p", { class: "muted" }, "A CSV/JSONL file with a text column, or a TXT file of one " +
        "text a line. The journal and the labelled file are written next to it, so " +
        "tunelab label run continues where this page stops."),
      el("div", { class: "row" }, el("label", { for: "label-file" }, "File in the workspace"),
        picker),
      el("div", { class: "error", hidden: true, "data-error-for": "path" }),
      el("div", { class: "row" }, el("label", { for: "label-set" }, "Labels, comma-separated"),
        labelSet, el("label", { for: "label-annotator" }, "your name in the journal"),
        annotator, start, startNote),
      el("div", { class: "error", hidden: true, "data-error-for": "labels" })),
    work);

  const files = await TL.api("GET", "/api/files");
  picker.replaceChildren(el("option", { value: "" }, "— choose a file —"),
    ...files.filter((f) => f.kind === "file" && !/\.journal\.jsonl$/.test(f.path))
      .map((f) => el("option", { value: f.path, selected: f.path === chosen.path },
        `${f.path} (${TL.bytes(f.bytes)})`)));
  if (chosen.path && chosen.labels && picker.value === chosen.path) await open();

  async function open() {
    TL.clearErrors(root);
    work.replaceChildren();
    session = null;
    TL.state.set("label", { path: picker.value, labels: labelSet.value,
      annotator: annotator.value });
    try {
      show(await TL.api("POST", "/api/label/state", request()));
    } catch (error) {
      TL.showError(root, error, startNote);
    }
  }

  function request(extra) {
    return { path: picker.value, labels: labelSet.value, annotator: annotator.value.trim(),
      ...(extra || {}) };
  }

  // One answer at a time: a key pressed while the last one is on its way is ignored, so a
  // label always goes to the text on screen.
  async function send(route, extra) {
    if (!session || busy) return;
    busy = true;
    work.dataset.busy = "yes";
    TL.clearErrors(work);
    try {
      show(await TL.api("POST", `/api/label/${route}`, request(extra)));
    } catch (error) {
      TL.showError(work, error, work.querySelector('[data-error-for="label"]'));
    } finally {
      busy = false;
      work.dataset.busy = "no";
    }
  }

  function show(found) {
    session = found;
    const current = found.current;
    const progress = el("p", { id: "label-progress", class: "facts",
      dataset: { labelled: found.labelled, total: found.total } },
    `${TL.number(found.labelled)} / ${TL.number(found.total)} labelled`);
    const bar = el("div", { class: "bar" }, el("div", { class: "bar-fill",
      style: `width: ${found.total ? Math.round(100 * found.labelled / found.total) : 0}%` }));
    const choices = found.labels.map((name, i) => el("button", {
      type: "button", id: `label-choice-${i + 1}`, class: "choice", disabled: !current,
      onclick: () => send("label", { item: current.item, label: name }),
    }, i < 9 ? el("kbd", {}, String(i + 1)) : null, ` ${name}`));
    const skip = el("button", { type: "button", id: "label-skip", disabled: !current,
      onclick: () => send("skip", { item: current.item }) }, el("kbd", {}, "s"), " skip");
    const undo = el("button", { type: "button", id: "label-undo",
      onclick: () => send("undo") }, el("kbd", {}, "u"), " undo");
    const text = current
      ? [el("blockquote", { id: "label-text", class: "label-text", dataset: { item: current.item } },
        current.text),
      el("p", { id: "label-reason", class: "muted" }, `Why this text: ${current.reason}`,
        current.guess ? ` · the model guesses ${current.guess}` : "")]
      : [el("p", { id: "label-text", class: "ok" }, "Nothing left to label.")];
    work.replaceChildren(TL.section("2. Label",
      progress, bar, ...text,
      el("div", { class: "row choices" }, ...choices, skip, undo),
      el("div", { class: "error", hidden: true, role: "alert", "data-error-for": "label" }),
      el("p", { id: "label-done", class: "muted" }, found.done || ""),
      el("p", {}, "Labelled file: ", el("a", { id: "label-export",
        href: `/files/${found.output}?download=true` }, `download ${found.output}`),
      ` · journal ${found.journal}`),
      TL.command(found.command)));
  }

  function onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    if (!session) return;
    if (/^[1-9]$/.test(event.key)) {
      const name = session.labels[Number(event.key) - 1];
      if (name === undefined || !session.current) return;
      event.preventDefault();
      send("label", { item: session.current.item, label: name });
    } else if (event.key === "s" && session.current) {
      event.preventDefault();
      send("skip", { item: session.current.item });
    } else if (event.key === "u") {
      event.preventDefault();
      send("undo");
    }
  }

  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
};
