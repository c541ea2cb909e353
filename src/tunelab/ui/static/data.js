// The Data page: pick or upload a file, see it as the loader reads it, map the task's columns,
// run the data doctor and its fix, then go on to training with all of it filled in.
"use strict";

TL.pages = TL.pages || {};

TL.pages.data = async function (root) {
  const { el } = TL;
  const info = await TL.api("GET", "/api/info");
  const chosen = TL.state.get("data", { task: "text-classification" });
  const picker = el("select", { id: "data-file", "data-key": "data.train" });
  const fileError = el("div", { class: "error", hidden: true, "data-error-for": "data.train" });
  const uploadError = el("div", { class: "error", hidden: true, "data-error-for": "upload" });
  const previewBox = el("div", { id: "data-preview" });
  const mappingBox = el("div", { id: "data-mapping" });
  const doctorBox = el("div", { id: "data-doctor" });
  const nextBox = el("div", { class: "next" });

  async function refreshFiles(select) {
    const files = await TL.api("GET", "/api/files");
    picker.replaceChildren(el("option", { value: "" }, "— choose a file —"),
      ...files.map((f) => el("option", { value: f.path },
        `${f.path}${f.kind === "folder" ? "/ (folder)" : ` (${TL.bytes(f.bytes)})`}`)));
    if (select) picker.value = select;
  }

  async function upload(files, folder) {
    TL.clearErrors(root);
    let first = null;
    for (const file of files) {
      const name = folder ? file.webkitRelativePath : file.name;
      const saved = await TL.api("PUT", `/api/files/${name.split("/").map(encodeURIComponent)
        .join("/")}`, undefined, file);
      first = first || saved.path;
    }
    if (folder && first) first = first.split("/").slice(0, 2).join("/");
    await refreshFiles(first);
    await choose(first);
  }

  const fileInput = el("input", { type: "file", id: "upload-file" });
  fileInput.addEventListener("change", () => upload([...fileInput.files], false)
    .catch((e) => TL.showError(root, e, uploadError)));
  const folderInput = el("input", { type: "file", id: "upload-folder", webkitdirectory: true });
  folderInput.addEventListener("change", () => upload([...folderInput.files], true)
    .catch((e) => TL.showError(root, e, uploadError)));
  picker.addEventListener("change", () => choose(picker.value));

  const exampleSelect = el("select", { id: "example-name" },
    info.examples.map((name) => el("option", { value: name }, name)));
  const [exampleButton, exampleNote] = TL.action("Build example data", async () => {
    const built = await TL.api("POST", `/api/examples/${exampleSelect.value}`);
    await refreshFiles();
    const match = [...picker.options].find((o) => o.value.startsWith(built.folder) &&
      /train/.test(o.value));
    if (match) { picker.value = match.value; await choose(match.value); }
    exampleCommand.replaceChildren(TL.command(built.command));
  }, { id: "example-build" });
  const exampleCommand = el("div");

  root.replaceChildren(
    el("h1", {}, "Data"),
    TL.section("1. Your data file",
      el("p", { class: "muted" }, `Files live in the workspace ${info.workspace}; uploads go to ` +
        `uploads/ (at most ${TL.bytes(info.max_upload_bytes)} a file).`),
      el("div", { class: "row" },
        el("label", { for: "data-file" }, "File in the workspace"), picker),
      fileError,
      el("div", { class: "row" },
        el("label", { for: "upload-file" }, "Upload a file"), fileInput,
        el("label", { for: "upload-folder" }, "or a folder of images"), folderInput),
      uploadError,
      el("div", { class: "row" }, el("label", { for: "example-name" }, "Or an example set"),
        exampleSelect, exampleButton, exampleNote),
      exampleCommand),
    previewBox, mappingBox, doctorBox, nextBox,
  );
  await refreshFiles(chosen.path);
  if (chosen.path) await choose(chosen.path, chosen.mapping);

  async function choose(path, mapping) {
    TL.clearErrors(root);
    for (const box of [previewBox, mappingBox, doctorBox, nextBox]) box.replaceChildren();
    if (!path) return;
    const state = { ...TL.state.get("data", {}), path };
    if (!mapping) delete state.mapping;
    TL.state.set("data", state);
    await preview(mapping);
  }

  async function preview(mapping) {
    const state = TL.state.get("data", {});
    let shown;
    try {
      shown = await TL.api("POST", "/api/data/preview", {
        path: state.path, task: state.task || "text-classification", mapping: mapping || null,
        encoding: state.encoding || null,
      });
    } catch (error) {
      previewBox.replaceChildren();
      mappingBox.replaceChildren();
      TL.showError(root, error, fileError);
      return;
    }
    const facts = [`${shown.rows.toLocaleString("en")} rows`, `format ${shown.format}`];
    if (shown.encoding) facts.push(`encoding ${shown.encoding}`);
    if (shown.delimiter) facts.push(`delimiter ${JSON.stringify(shown.delimiter)}`);
    facts.push(`columns: ${shown.columns.join(", ")}`);
    previewBox.replaceChildren(TL.section("2. As tunelab reads it",
      el("p", { class: "facts", id: "preview-facts" }, facts.join(" · ")),
      el("div", { class: "scroll" }, TL.table(["row", ...shown.columns],
        shown.head.map((cells, i) => [shown.row_numbers[i], ...cells]), { id: "preview-table" })),
      el("p", { class: "muted" }, `The first ${shown.head.length} rows.`)));
    showMapping(shown);
  }

  function showMapping(shown) {
    const state = TL.state.get("data", {});
    const task = el("select", { id: "data-task", "data-key": "task" },
      info.tasks.map((name) => el("option", { value: name, selected: name === state.task }, name)));
    task.addEventListener("change", () => {
      TL.state.set("data", { ...TL.state.get("data", {}), task: task.value, mapping: null });
      preview(null);
    });
    const selects = shown.mapping.map((m) => {
      const select = el("select", { "data-key": m.key, id: `map-${m.key}` },
        el("option", { value: "" }, `(none: ${m.default})`),
        shown.columns.map((c) => el("option", { value: c, selected: c === m.column }, c)));
      select.addEventListener("change", () => {
        const mapping = Object.fromEntries(selects.map((s) => [s.dataset.key, s.value || null]));
        TL.state.set("data", { ...TL.state.get("data", {}), mapping });
        preview(mapping);
      });
      return select;
    });
    const rows = shown.mapping.map((m, i) => el("div", { class: "field" },
      el("label", { for: `map-${m.key}` }, el("code", {}, m.key)), selects[i],
      el("span", { class: "help" }, m.description),
      el("div", { class: "error", hidden: true, "data-error-for": m.key })));
    const verdict = el("p", { id: "mapping-check" });
    mappingBox.replaceChildren(TL.section("3. Task and columns",
      el("div", { class: "field" }, el("label", { for: "data-task" }, el("code", {}, "task")), task,
        el("div", { class: "error", hidden: true, "data-error-for": "task" })),
      el("p", { class: "muted" }, shown.guessed
        ? "tunelab's guesses are selected; change any that are wrong."
        : "Your choices; the task reads the file with them as training would."),
      ...rows, verdict));
    const mapping = Object.fromEntries(shown.mapping.map((m) => [m.key, m.column]));
    TL.state.set("data", { ...TL.state.get("data", {}), task: task.value, mapping,
      overrides: shown.check.overrides });
    if (shown.check.ok) {
      verdict.className = "ok";
      verdict.textContent = `✓ ${task.value} reads this file with these columns.`;
    } else {
      TL.showError(mappingBox, { message: shown.check.error, field: shown.check.field }, verdict);
    }
    showDoctor(shown, mapping);
    showNext(shown);
  }

  function showDoctor(shown, mapping) {
    const state = TL.state.get("data", {});
    if (!info.doctor_tasks.includes(state.task)) {
      doctorBox.replaceChildren(TL.section("4. Data doctor", el("p", { class: "muted" },
        `The doctor checks ${info.doctor_tasks.join(" and ")} files; training still ` +
        "diagnoses and cleans this data before it trains.")));
      return;
    }
    const result = el("div", { id: "doctor-result" });
    const request = (fix) => ({
      path: state.path, task: state.task, fix,
      text_column: mapping["data.text_column"] || "text",
      label_column: mapping["data.label_column"] || "label",
    });
    const [run, runNote] = TL.action("Run the doctor", async () => {
      showReport(result, await TL.api("POST", "/api/data/doctor", request(false)));
    }, { id: "doctor-run" });
    if (!info.doctor_fixes.includes(state.task)) {  // training's own checks of this task
      doctorBox.replaceChildren(TL.section("4. Data doctor",
        el("p", { class: "muted" }, `The checks training makes of ${state.task} data before ` +
          "it trains: empty and repeated rows, leakage between the splits, unreadable files. " +
          "Training cleans these rows itself as it reads them."),
        el("div", { class: "row" }, run, runNote), result));
      return;
    }
    const [fix, fixNote] = TL.action("Apply the fix", async () => {
      showReport(result, await TL.api("POST", "/api/data/doctor", request(true)));
    }, { id: "doctor-fix" });
    doctorBox.replaceChildren(TL.section("4. Data doctor",
      el("p", { class: "muted" }, "Duplicates, conflicting labels, leakage, class balance, " +
        "damaged text and suspected label errors, with example rows. The fix writes a " +
        "cleaned copy under cleaned/ and leaves your file as it is."),
      el("div", { class: "row" }, run, runNote, fix, fixNote), result));
  }

  function showReport(box, found) {
    const parts = [TL.command(found.command), el("pre", { class: "report" }, found.text)];
    const examples = TL.doctorExamples(found.report);
    if (examples) parts.push(examples);
    if (found.fixed) {
      const use = el("button", { type: "button", id: "use-cleaned", onclick: async () => {
        await refreshFiles(found.fixed);
        await choose(found.fixed);
      } }, "Use the cleaned file");
      parts.push(el("p", { class: "ok", id: "fixed-file" }, "Cleaned data written to ",
        el("a", { href: `/files/${found.fixed}?download=true` }, found.fixed), " ", use));
      if (found.label_errors_file) {
        parts.push(el("p", {}, "Suspected label errors to review: ",
          el("a", { href: `/files/${found.label_errors_file}?download=true` },
            found.label_errors_file)));
      }
    }
    box.replaceChildren(...parts);
  }

  function showNext(shown) {
    const state = TL.state.get("data", {});
    const go = el("button", { type: "button", class: "primary", id: "to-train", onclick: () => {
      const stem = state.path.split("/").pop().split(".")[0] || "run";
      const values = {};
      for (const item of state.overrides || []) {
        const at = item.indexOf("=");
        let value = item.slice(at + 1);
        if (value.startsWith("\"")) value = JSON.parse(value);
        values[item.slice(0, at)] = value;
      }
      values.output = `runs/${stem}`;
      TL.state.set("train", values);
      location.hash = "#train";
    } }, "Continue to training →");
    nextBox.replaceChildren(go);
    go.disabled = !shown.check.ok;
  }
};

// The doctor's example rows: duplicates, conflicts and suspected label errors, as tables.
TL.doctorExamples = function (report) {
  const { el } = TL;
  const blocks = [];
  for (const [split, s] of Object.entries(report.splits || {})) {
    const duplicates = (s.duplicates && s.duplicates.examples) || [];
    if (duplicates.length) {
      blocks.push(el("h3", {}, `${split}: duplicate texts`),
        TL.table(["rows", "text"], duplicates.slice(0, 10).map((d) => [d.rows.join(", "), d.text])));
    }
    const conflicts = (s.conflicts && s.conflicts.examples) || [];
    if (conflicts.length) {
      blocks.push(el("h3", {}, `${split}: one text, different labels`),
        TL.table(["rows", "labels", "text"],
          conflicts.slice(0, 10).map((c) => [c.rows.join(", "), c.labels.join(" / "), c.text])));
    }
  }
  const found = report.label_errors || {};
  const errors = found.examples || [];
  if (errors.length) {
    // skipped: the model disputes too many labels to name rows; its disagreements are to read
    const heading = found.skipped
      ? "The model's top disagreements (no row named as a label error)"
      : "Suspected label errors";
    blocks.push(el("h3", {}, heading), ...(found.skipped ? [el("p", {}, found.skipped)] : []),
      TL.table(["row", "given", "suggested", "p(suggested)", "text"], errors.slice(0, 10)
        .map((e) => [e.row, e.given, e.suggested, TL.number(e.suggested_probability, 3), e.text])));
  }
  return blocks.length ? el("div", { class: "examples", id: "doctor-examples" }, ...blocks) : null;
};
