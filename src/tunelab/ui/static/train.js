// The Train page: a form built from the config schema (every key, its default and its
// description, in `tunelab init`'s sections), model suggestions, the equivalent YAML and
// command as you type, and the Start button.
"use strict";

TL.pages = TL.pages || {};

// Sections open at first; the others hold options of one task or method.
TL.OPEN_SECTIONS = ["data", "model", "training"];

TL.pages.train = async function (root) {
  const { el } = TL;
  const tree = await TL.api("GET", "/api/form");
  const saved = TL.state.get("train", {});
  const inputs = {};
  const specs = {};

  function fieldRow(spec) {
    specs[spec.key] = spec;
    const id = `f-${spec.key}`;
    let input;
    const start = spec.key in saved ? saved[spec.key] : spec.shown_default;
    if (spec.input === "checkbox") {
      input = el("input", { type: "checkbox", id, checked: start === true || start === "true" });
    } else if (spec.input === "select") {
      input = el("select", { id }, spec.choices.map((c) =>
        el("option", { value: String(c), selected: String(c) === String(start) }, String(c))));
    } else {
      const attributes = { id, value: start, spellcheck: "false", autocomplete: "off" };
      if (spec.input === "number") {
        Object.assign(attributes, { type: "number", step: spec.integer ? "1" : "any" });
      } else {
        attributes.type = "text";
      }
      if (spec.suggest) attributes.list = `${id}-list`;
      input = el("input", attributes);
    }
    input.dataset.key = spec.key;
    inputs[spec.key] = input;
    input.addEventListener(spec.input === "checkbox" || spec.input === "select" ? "change" : "input",
      scheduleCheck);
    const shownDefault = spec.shown_default === "" ? "null" : String(spec.shown_default);
    return el("div", { class: "field" },
      el("label", { for: id }, el("code", {}, spec.key)), input,
      spec.suggest ? el("datalist", { id: `${id}-list` },
        spec.suggest.map((s) => el("option", { value: s }))) : null,
      el("span", { class: "help" }, spec.description, el("span", { class: "default" },
        ` (default: ${shownDefault})`)),
      el("div", { class: "error", hidden: true, "data-error-for": spec.key }));
  }

  function render(items, depth) {
    return items.map((item) => {
      if (item.kind === "field") return fieldRow(item);
      const open = depth > 0 || TL.OPEN_SECTIONS.includes(item.key);
      return el("details", { class: "group", open, "data-section": item.key },
        el("summary", {}, el("code", {}, item.key), " ", el("span", { class: "muted" },
          item.description)), ...render(item.items, depth + 1));
    });
  }

  function values() {
    const changed = {};
    for (const [key, input] of Object.entries(inputs)) {
      const spec = specs[key];
      const value = spec.input === "checkbox" ? input.checked : input.value;
      if (value !== spec.shown_default) changed[key] = value;
    }
    return changed;
  }

  const yamlBox = el("pre", { id: "config-yaml", class: "yaml" });
  const commandBox = el("div", { id: "config-command" });
  const formError = el("div", { class: "error", hidden: true, id: "form-error", role: "alert" });
  const overwrite = el("input", { type: "checkbox", id: "overwrite" });
  const suggestions = el("div", { id: "suggestions" });
  let timer = null;

  function scheduleCheck() {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  }

  async function check() {
    const changed = values();
    TL.state.set("train", changed);
    TL.clearErrors(root);
    try {
      const found = await TL.api("POST", "/api/config", { values: changed });
      if (!found.ok) throw new TL.ApiError(found.error, found.field, 200);
      yamlBox.textContent = found.yaml || "# every key at its default (tunelab init writes them all)\n";
      commandBox.replaceChildren(TL.command(found.command, "CLI"),
        el("p", { class: "muted" }, "Run it from the workspace folder; or save the YAML as " +
          "run.yaml and run: tunelab train run.yaml"));
      return true;
    } catch (error) {
      TL.showError(root, error, formError);
      return false;
    }
  }

  const [suggest, suggestNote] = TL.action("Suggest models", async () => {
    const changed = values();
    const found = await TL.api("POST", "/api/recommend", {
      task: inputs.task.value, path: changed["data.train"] || null,
      text_column: inputs["data.text_column"].value,
      label_column: inputs["data.label_column"].value,
    });
    suggestions.replaceChildren(
      el("p", { class: "muted" }, `For ${found.examples.toLocaleString("en")} examples, ` +
        `language ${found.language}, ${found.classes} classes, on this machine:`),
      TL.table(["model", "advice", "memory full / LoRA", "epoch full / LoRA", ""],
        found.options.slice(0, 8).map((o) => [
          `${o.model} (${(o.parameters / 1e6).toFixed(1)}M)`,
          el("span", { title: o.reason }, o.method),
          `${TL.bytes(o.memory_bytes.full)} / ${TL.bytes(o.memory_bytes.lora)}`,
          `${TL.duration(o.epoch_seconds.full)} / ${TL.duration(o.epoch_seconds.lora)}`,
          el("button", { type: "button", class: "small", onclick: () => {
            inputs["model.name"].value = o.model;
            if (o.method === "lora" || o.method === "qlora") inputs["peft.method"].value = o.method;
            if (o.method === "few-shot") inputs["training.method"].value = "few-shot";
            check();
          } }, "use"),
        ]), { id: "suggestion-table", class: "compact" }),
      TL.command(found.command));
  }, { id: "suggest" });

  const [start, startNote] = TL.action("Start training", async () => {
    if (!(await check())) return;
    const job = await TL.api("POST", "/api/jobs", { values: values(), overwrite: overwrite.checked });
    location.hash = `#run/${job.id}`;
  }, { class: "primary", id: "start" });

  root.replaceChildren(
    el("h1", {}, "Train"),
    el("div", { class: "columns" },
      el("form", { id: "config-form", class: "form", onsubmit: (e) => e.preventDefault() },
        el("p", { class: "muted" }, "Every config key, its default and what it means, as " +
          "tunelab init writes them. Changed keys make the YAML and the command on the right."),
        ...render(tree, 0)),
      el("aside", { class: "side" },
        TL.section("Models for this data", el("div", { class: "row" }, suggest, suggestNote),
          suggestions),
        TL.section("Equivalent YAML", yamlBox),
        TL.section("Equivalent command", commandBox),
        TL.section("Start",
          el("label", { class: "inline" }, overwrite, " replace an existing run in the output " +
            "folder (--overwrite)"),
          el("div", { class: "row" }, start, startNote), formError))));
  await check();
};
