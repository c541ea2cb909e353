// The Label page: `tunelab label run` in the browser. Pick a file of texts and a label set,
// then label one text at a time (keys 1-9 pick a label, s skips, u undoes); every answer is
// in the journal beside the data before the next text shows, shared with the CLI.
// Entities (`--entities`): select characters with the mouse, or with Shift+arrows from the
// cursor, press a type's number to mark them, x removes the mark at the cursor, Enter saves
// the marks (the model's guessed spans come pre-filled).
// Several annotators: a share of the texts is labelled twice, blind (`--double-rate`); the
// page shows Cohen's kappa, and "Review disagreements" settles them as `tunelab label review`
// does (keys 1-9 pick the final label, s puts one off).
"use strict";

TL.pages = TL.pages || {};

TL.pages.label = async function (root) {
  const { el } = TL;
  const chosen = TL.state.get("label", { path: "", labels: "" });
  const picker = el("select", { id: "label-file", "data-key": "path" });
  const kind = el("select", { id: "label-kind", "data-key": "kind" },
    el("option", { value: "classes", selected: chosen.kind !== "entities" }, "a class per text"),
    el("option", { value: "entities", selected: chosen.kind === "entities" },
      "entity spans (PER, LOC, ...)"));
  const labelSet = el("input", { type: "text", id: "label-set", "data-key": "labels",
    placeholder: "positive,negative", value: chosen.labels || "" });
  const annotator = el("input", { type: "text", id: "label-annotator", "data-key": "annotator",
    placeholder: "me", size: 10, value: chosen.annotator || "" });
  const holdout = el("input", { type: "number", id: "label-holdout", "data-key": "holdout",
    min: 0, step: 1, size: 5, placeholder: "0", value: chosen.holdout || "" });
  const target = el("input", { type: "number", id: "label-target", "data-key": "target",
    min: 0, max: 1, step: 0.01, size: 5, value: chosen.target || "0.9" });
  const doubleRate = el("input", { type: "number", id: "label-double-rate",
    "data-key": "double_rate", min: 0, max: 1, step: 0.05, size: 5, placeholder: "0",
    value: chosen.double_rate || "" });
  const [start, startNote] = TL.action("Start labelling", () => open(), {
    id: "label-start", class: "primary" });
  const work = el("div", { id: "label-work" });
  let session = null; // the last answer of the server: the text shown, progress, files
  let busy = false;
  let reviewing = false; // settling disagreements instead of labelling
  let later = []; // the disagreements put off in this review pass
  // entity mode: the marks on the text shown, the selection and the keyboard cursor
  let marks = [];
  // positions are between characters (0 .. length), as in a text editor: Shift+Right from
  // 0 selects the first character; the cursor shows on the character after it
  let selection = null; // {anchor, focus}
  let cursor = 0;

  root.replaceChildren(
    el("h1", {}, "Label"),
    TL.section("1. Texts and labels",
      el("p", { class: "muted" }, "A CSV/JSONL file with a text column, or a TXT file of one " +
        "text a line. The journal and the labelled file are written next to it, so " +
        "tunelab label run continues where this page stops."),
      el("div", { class: "row" }, el("label", { for: "label-file" }, "File in the workspace"),
        picker),
      el("div", { class: "error", hidden: true, "data-error-for": "path" }),
      el("div", { class: "row" }, el("label", { for: "label-kind" }, "Label"), kind,
        el("label", { for: "label-set" }, "Labels or entity types, comma-separated"),
        labelSet, el("label", { for: "label-annotator" }, "your name in the journal"),
        annotator),
      el("div", { class: "row" }, el("label", { for: "label-holdout" },
        "held-out texts to measure the model (0: none)"), holdout,
      el("label", { for: "label-target" }, "target score"), target,
      el("label", { for: "label-double-rate" }, "share labelled twice (0: none)"), doubleRate,
      start, startNote),
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
    reviewing = false;
    TL.state.set("label", { path: picker.value, labels: labelSet.value,
      annotator: annotator.value, kind: kind.value, holdout: holdout.value,
      target: target.value, double_rate: doubleRate.value });
    try {
      show(await TL.api("POST", "/api/label/state", request()));
    } catch (error) {
      TL.showError(root, error, startNote);
    }
  }

  // a note travels with the next label or skip into the journal, then the box empties
  const note = el("input", { type: "text", id: "label-note", size: 40,
    placeholder: "a note for the journal (optional; Tab leaves the box)" });

  function request(extra) {
    return { path: picker.value, labels: labelSet.value, annotator: annotator.value.trim(),
      entities: kind.value === "entities", holdout: Number(holdout.value || 0),
      target: Number(target.value || 0.9), double_rate: Number(doubleRate.value || 0),
      ...(extra || {}) };
  }

  // One answer at a time: a key pressed while the last one is on its way is ignored, so a
  // label always goes to the text on screen.
  async function send(route, extra) {
    if (!session || busy) return;
    const review = route === "review" || route === "settle";
    if (!review && route !== "undo" && note.value.trim()) {
      extra = { ...extra, note: note.value.trim() };
    }
    if (review) extra = { ...extra, later };
    busy = true;
    work.dataset.busy = "yes";
    TL.clearErrors(work);
    try {
      const found = await TL.api("POST", `/api/label/${route}`, request(extra));
      reviewing = review;
      if (review) showReview(found); else show(found);
      if (extra && extra.note) note.value = "";
    } catch (error) {
      TL.showError(work, error, work.querySelector('[data-error-for="label"]'));
    } finally {
      busy = false;
      work.dataset.busy = "no";
    }
  }

  function show(found) {
    session = found;
    if (found.entities) {
      marks = (found.current && found.current.spans || []).map((s) => s.slice());
      selection = null;
      cursor = 0;
    }
    render();
  }

  function render() {
    const found = session;
    const current = found.current;
    const progress = el("p", { id: "label-progress", class: "facts",
      dataset: { labelled: found.labelled, total: found.total } },
    `${TL.number(found.labelled)} / ${TL.number(found.total)} labelled`);
    const bar = el("div", { class: "bar" }, el("div", { class: "bar-fill",
      style: `width: ${found.total ? Math.round(100 * found.labelled / found.total) : 0}%` }));
    const choices = found.labels.map((name, i) => el("button", {
      type: "button", id: `label-choice-${i + 1}`, class: "choice", disabled: !current,
      onclick: () => found.entities ? mark(i) : send("label", { item: current.item, label: name }),
    }, i < 9 ? el("kbd", {}, String(i + 1)) : null, ` ${name}`));
    if (found.entities) {
      choices.push(el("button", { type: "button", id: "label-save", class: "primary",
        disabled: !current, onclick: save }, el("kbd", {}, "Enter"), " save"));
    }
    const skip = el("button", { type: "button", id: "label-skip", disabled: !current,
      onclick: () => send("skip", { item: current.item }) }, el("kbd", {}, "s"), " skip");
    const undo = el("button", { type: "button", id: "label-undo",
      onclick: () => send("undo") }, el("kbd", {}, "u"), " undo");
    const text = current
      ? [found.entities ? entityText(current) : el("blockquote", { id: "label-text",
        class: "label-text", dataset: { item: current.item } }, current.text),
      el("p", { id: "label-reason", class: "muted" }, `Why this text: ${current.reason}`,
        current.guess ? ` · the model guesses ${current.guess}` : "",
        found.entities && current.spans ? " · its guessed spans are marked" : ""),
      found.entities ? markList(current) : null]
      : [el("p", { id: "label-text", class: "ok" }, "Nothing left to label.")];
    const measured = found.measured
      ? el("p", { id: "label-measured", class: "facts" }, found.measured) : null;
    const agreed = agreementLine(found.agreement, true);
    const chart = found.history
      ? el("canvas", { id: "label-chart", class: "chart label-chart",
        dataset: { measured: found.history.points.length } }) : null;
    work.replaceChildren(TL.section("2. Label",
      progress, bar, measured, chart, agreed, ...text,
      el("div", { class: "row choices" }, ...choices, skip, undo),
      el("div", { class: "error", hidden: true, role: "alert", "data-error-for": "label" }),
      el("div", { class: "row" }, el("label", { for: "label-note" }, "Note"), note),
      el("p", { id: "label-done", class: "muted" }, found.done || ""),
      el("p", {}, "Labelled file: ", el("a", { id: "label-export",
        href: `/files/${found.output}?download=true` }, `download ${found.output}`),
      ` · journal ${found.journal}`, " ",
      el("button", { type: "button", id: "label-train", disabled: !found.labelled,
        onclick: () => trainOn(found) }, "Train a model on it →")),
      TL.command(found.command)));
    if (chart) drawHistory(chart, found.history);
    if (found.retraining) watchRetrain(found);
  }

  // The model retrains in the background: ask for the held-out measurements until it is
  // done, and draw its point without waiting for the next label (only the chart and its line
  // change, so a half-marked span or a note being typed stays as it is).
  function watchRetrain(found) {
    if (found.watching) return;
    found.watching = true;
    setTimeout(async () => {
      found.watching = false;
      if (session !== found || reviewing) return; // a newer answer took over
      let progress;
      try {
        progress = await TL.api("POST", "/api/label/progress", request());
      } catch (error) {
        return; // the next label shows the state, and any error, anyway
      }
      if (session !== found) return;
      Object.assign(found, progress);
      const chart = work.querySelector("#label-chart");
      let measured = work.querySelector("#label-measured");
      if (!measured && found.measured && chart) {
        measured = el("p", { id: "label-measured", class: "facts" });
        chart.before(measured);
      }
      if (measured && found.measured) measured.textContent = found.measured;
      if (chart && found.history) {
        chart.dataset.measured = found.history.points.length;
        drawHistory(chart, found.history);
      }
      if (found.retraining) watchRetrain(found);
    }, 1000);
  }

  // Cohen's kappa on the double-labelled texts, and the way into the review when some
  // disagreements wait for it.
  function agreementLine(agreement, offerReview) {
    if (!agreement) return null;
    return el("p", { id: "label-agreement", class: "facts",
      dataset: { toReview: agreement.to_review } }, agreement.line, " ",
    offerReview && agreement.to_review ? el("button", { type: "button", id: "label-review",
      onclick: () => { later = []; send("review"); } }, "Review disagreements →") : null);
  }

  // -- the review of disagreements (tunelab label review) -------------------------------

  function showReview(found) {
    session = found;
    const current = found.current;
    const choices = found.labels.map((name, i) => el("button", {
      type: "button", id: `review-choice-${i + 1}`, class: "choice", disabled: !current,
      onclick: () => settle(name),
    }, i < 9 ? el("kbd", {}, String(i + 1)) : null, ` ${name}`));
    const text = current
      ? [el("blockquote", { id: "review-text", class: "label-text",
        dataset: { item: current.item } }, current.text),
      el("p", { id: "review-given", class: "facts" }, "Labelled as: ",
        Object.entries(current.given).sort()
          .map(([who, label]) => `${who}: ${label}`).join(" · "))]
      : [el("p", { id: "review-text", class: "ok" },
        later.length ? "Only the disagreements put off are left; start again to see them."
          : "No disagreement left to settle.")];
    work.replaceChildren(TL.section("2. Review disagreements",
      el("p", { id: "review-progress", class: "facts", dataset: { pending: found.pending } },
        `${TL.number(found.pending)} disagreements to settle; the label you pick is final ` +
        "(journalled with role review)"),
      agreementLine(found.agreement, false), ...text,
      el("div", { class: "row choices" }, ...choices,
        el("button", { type: "button", id: "review-later", disabled: !current,
          onclick: putOff }, el("kbd", {}, "s"), " later"),
        el("button", { type: "button", id: "review-back", onclick: () => open() },
          "← Back to labelling")),
      el("div", { class: "error", hidden: true, role: "alert", "data-error-for": "label" }),
      el("p", { id: "label-done", class: "muted" }, found.done || ""),
      el("p", {}, "Labelled file: ", el("a", { id: "label-export",
        href: `/files/${found.output}?download=true` }, `download ${found.output}`),
      ` · journal ${found.journal}`),
      TL.command(found.command)));
  }

  function settle(name) {
    if (session && session.current) send("settle", { item: session.current.item, label: name });
  }

  function putOff() {
    if (!session || !session.current) return;
    later = later.concat([session.current.item]);
    send("review");
  }

  // The held-out score after each retrain against the training labels it had, and the
  // target as a dashed line across the same labels.
  function drawHistory(canvas, history) {
    const points = history.points.map((p) => [p.labels, p.score]);
    const series = [{ name: `held-out ${history.metric}`, points }];
    if (points.length) {
      const xs = points.map((p) => p[0]);
      const [low, high] = [Math.min(...xs), Math.max(...xs)];
      const [from, to] = low === high ? [low - 1, high + 1] : [low, high];
      series.push({ name: `target ${history.target}`, dashed: true, color: "#999",
        points: [[from, history.target], [to, history.target]] });
    }
    TL.chart(canvas, series, { xLabel: "training labels",
      empty: "the held-out score appears after the first retrain with 10 held-out labels" });
  }

  // The Train page, filled in for a full `tunelab train` on the labelled file.
  function trainOn(found) {
    const stem = found.output.split("/").pop().split(".")[0] || "labels";
    const values = found.entities
      ? { task: "token-classification", "data.train": found.output }
      : { task: "text-classification", "data.train": found.output,
        "data.text_column": "text", "data.label_column": "label" };
    values.output = `runs/${stem}-${found.entities ? "entities" : "labels"}`;
    TL.state.set("train", values);
    location.hash = "#train";
  }

  // -- entities -----------------------------------------------------------------------

  function entityText(current) {
    const [low, high] = selected();
    const chars = Array.from(current.text); // offsets count code points, as Python does
    const quote = el("blockquote", { id: "label-text", class: "label-text entity-text",
      tabindex: 0, dataset: { item: current.item } },
    ...chars.map((char, i) => {
      const found = marks.find((m) => m[0] <= i && i < m[1]);
      const classes = ["ch"];
      if (found) classes.push("ent", `ent-${session.labels.indexOf(found[2]) % 6}`);
      if (low <= i && i < high) classes.push("sel");
      if (i === cursor) classes.push("cursor");
      const data = found ? { i, type: found[2] } : { i }; // dataset turns undefined into text
      return el("span", { class: classes.join(" "), dataset: data,
        title: found ? found[2] : undefined }, char);
    }));
    quote.addEventListener("mouseup", () => {
      const picked = window.getSelection();
      if (!picked || picked.isCollapsed) return;
      // a position between characters: inside character i's text, offset 0 is before it
      const at = (node, offset) => {
        const span = (node.nodeType === 1 ? node : node.parentElement).closest("[data-i]");
        if (!span) return null;
        return Number(span.dataset.i) + (node.nodeType === 3 && offset > 0 ? 1 : 0);
      };
      const a = at(picked.anchorNode, picked.anchorOffset);
      const b = at(picked.focusNode, picked.focusOffset);
      picked.removeAllRanges();
      if (a === null || b === null || a === b) return;
      selection = { anchor: Math.min(a, b), focus: Math.max(a, b) };
      cursor = selection.focus;
      render();
    });
    return quote;
  }

  function markList(current) {
    const chars = Array.from(current.text);
    return el("p", { id: "label-marks", class: "facts" }, marks.length ? "Marked: " : "No entity " +
      "marked (Enter saves the text as having none).",
    ...marks.map((m, n) => el("span", { class: `chip ent-${session.labels.indexOf(m[2]) % 6}`,
      id: `label-mark-${n}` }, `${chars.slice(m[0], m[1]).join("")} ${m[2]} `,
    el("button", { type: "button", class: "link", title: "remove",
      onclick: () => { marks.splice(n, 1); render(); } }, "×"))));
  }

  function selected() {
    if (!selection || selection.anchor === selection.focus) return [-1, -1];
    return [Math.min(selection.anchor, selection.focus),
      Math.max(selection.anchor, selection.focus)];
  }

  function mark(typeIndex) {
    const [low, high] = selected();
    const type = session.labels[typeIndex];
    if (low < 0 || type === undefined) return;
    marks = marks.filter((m) => m[1] <= low || m[0] >= high).concat([[low, high, type]])
      .sort((a, b) => a[0] - b[0]);
    selection = null;
    render();
  }

  function unmark() {
    const at = Math.min(cursor, Array.from(session.current.text).length - 1);
    const [low, high] = selected()[0] >= 0 ? selected() : [at, at + 1];
    marks = marks.filter((m) => m[1] <= low || m[0] >= high);
    selection = null;
    render();
  }

  function save() {
    if (!session || !session.current) return;
    send("label", { item: session.current.item, spans: marks });
  }

  function onEntityKey(event) {
    const length = Array.from(session.current.text).length;
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -length, End: length };
    if (event.key in moves) {
      event.preventDefault();
      const next = Math.max(0, Math.min(length, cursor + moves[event.key]));
      if (event.shiftKey) selection = { anchor: selection ? selection.anchor : cursor, focus: next };
      else selection = null;
      cursor = next;
      render();
    } else if (/^[1-9]$/.test(event.key)) {
      event.preventDefault();
      mark(Number(event.key) - 1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      save();
    } else if (event.key === "x" || event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      unmark();
    } else if (event.key === "Escape") {
      selection = null;
      render();
    } else if (event.key === "s") {
      event.preventDefault();
      send("skip", { item: session.current.item });
    } else if (event.key === "u") {
      event.preventDefault();
      send("undo");
    }
  }

  function onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    if (!session) return;
    if (reviewing) {
      if (/^[1-9]$/.test(event.key) && session.labels[Number(event.key) - 1] !== undefined) {
        event.preventDefault();
        settle(session.labels[Number(event.key) - 1]);
      } else if (event.key === "s") {
        event.preventDefault();
        putOff();
      }
      return;
    }
    if (session.entities) {
      // Enter or space on a focused button is that button's click, not a save
      if (target && target.tagName === "BUTTON" && (event.key === "Enter" || event.key === " ")) {
        return;
      }
      if (session.current) onEntityKey(event);
      else if (event.key === "u") send("undo");
      return;
    }
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
