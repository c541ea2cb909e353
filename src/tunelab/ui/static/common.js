// What every page shares: calls to the workbench's API, building DOM, errors next to fields,
// and the little state that travels from one page to the next (sessionStorage).
"use strict";

const TL = {};

TL.ApiError = class extends Error {
  constructor(message, field, status) {
    super(message);
    this.field = field;
    this.status = status;
  }
};

// One call to the API: JSON in and out; an error carries the CLI's line and its field.
TL.api = async function (method, path, body, raw) {
  const options = { method, headers: { "X-Tunelab-UI": "1" } };
  if (raw !== undefined) {
    options.body = raw;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = { error: text };
  }
  if (!response.ok) {
    const message = (data && (data.error || data.detail)) || `HTTP ${response.status}`;
    throw new TL.ApiError(String(message), data && data.field, response.status);
  }
  return data;
};

// el("div", {class: "x", onclick: f}, "text", child, ...): text is never parsed as HTML.
TL.el = function (tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

// An error line next to the field it is about (data-error-for="key"), else in `fallback`.
TL.showError = function (root, error, fallback) {
  const message = error instanceof Error ? error.message : String(error);
  const field = error && error.field;
  let slot = field ? root.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  if (!slot) slot = fallback;
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    slot.classList.add("error");
    const input = field ? root.querySelector(`[data-key="${CSS.escape(field)}"]`) : null;
    if (input) input.classList.add("invalid");
  }
  return slot;
};

TL.clearErrors = function (root) {
  for (const slot of root.querySelectorAll(".error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const input of root.querySelectorAll(".invalid")) input.classList.remove("invalid");
};

// A command the user can copy, as the page shows every action's CLI equivalent.
TL.command = function (text, label) {
  const code = TL.el("code", {}, text);
  const button = TL.el("button", {
    type: "button", class: "copy", title: "copy to the clipboard",
    onclick: () => TL.copy(text, button),
  }, "copy");
  return TL.el("div", { class: "command" }, TL.el("span", { class: "label" }, label || "CLI"),
    code, button);
};

TL.copy = async function (text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "copied";
  } catch (e) {
    button.textContent = "select and copy";
  }
  setTimeout(() => { button.textContent = "copy"; }, 1500);
};

TL.state = {
  get(name, fallback) {
    try {
      const value = sessionStorage.getItem(`tunelab.${name}`);
      return value === null ? fallback : JSON.parse(value);
    } catch (e) {
      return fallback;
    }
  },
  set(name, value) {
    sessionStorage.setItem(`tunelab.${name}`, JSON.stringify(value));
  },
};

TL.number = function (value, digits) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return value.toFixed(digits === undefined ? 4 : digits);
};

TL.duration = function (seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
};

TL.bytes = function (n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
};

TL.section = function (title, ...children) {
  return TL.el("section", { class: "card" }, TL.el("h2", {}, title), ...children);
};

TL.table = function (header, rows, options) {
  const head = TL.el("tr", {}, header.map((h) => TL.el("th", {}, h)));
  const body = rows.map((row) => TL.el("tr", {}, row.map((cell) =>
    TL.el("td", {}, cell instanceof Node ? cell : (cell === null ? "" : String(cell))))));
  return TL.el("table", options || {}, TL.el("thead", {}, head), TL.el("tbody", {}, body));
};

TL.status = function (status) {
  return TL.el("span", { class: `status status-${status}` }, status);
};

// A button that shows it is busy while its action runs, and the action's error beside it.
TL.action = function (label, run, attributes) {
  const note = TL.el("span", { class: "error", hidden: true, role: "alert" });
  const button = TL.el("button", { type: "button", ...(attributes || {}) }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    note.hidden = true;
    const before = button.textContent;
    button.textContent = `${label}…`;
    try {
      await run(note);
    } catch (error) {
      TL.showError(document, error, note);
    } finally {
      button.disabled = false;
      button.textContent = before;
    }
  });
  return [button, note];
};
