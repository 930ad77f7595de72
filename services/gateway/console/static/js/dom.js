// Building the page: elements from data (text only through textContent), tables, notices.

import { ApiError } from "./api.js";

// h("a", {href: "/x", class: "b", onclick: fn}, "text", child, ...)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// The ISO time of a datetime-local input's value; "" when it is empty or not a time.
export function isoOf(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

export function pretty(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

// columns: [[heading, row => cell], ...]; a responsive table (cards on a phone, via data-label).
export function table(columns, rows, attrs = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title))));
  const body = h("tbody", {}, rows.map((row) => h("tr", row.__attrs ?? {},
    columns.map(([title, cell]) => h("td", { "data-label": title }, cell(row))))));
  return h("div", { class: "table-wrap" }, h("table", attrs, head, body));
}

export function empty(message, ...next) {
  return h("div", { class: "empty" }, h("p", {}, message), ...next);
}

export function errorText(err) {
  return err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
}

export function errorBox(err) {
  return h("div", { class: "flash error", role: "alert" }, errorText(err));
}

// A one-line notice at the top of the page.
export function flash(message, kind = "info") {
  const el = document.getElementById("flash");
  el.className = `flash ${kind}`;
  el.textContent = message;
  el.hidden = !message;
}

export function statusBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

// A field: label + control, for forms.
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", {}, hint) : null);
}

// A button that runs an async action once at a time, showing the API's error under it; run(button) may
// return a message to show there.
export function action(label, run, attrs = {}) {
  const out = h("span", { class: "action-result", role: "status" });
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.className = "action-result";
    out.textContent = "";
    try {
      const message = await run(button);
      if (message) out.textContent = message;
    } catch (err) {
      out.className = "action-result error";
      out.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "action" }, button, out);
}

// A form whose submit runs `run` (async): `out` is emptied first and shows the API's error, if any.
export function onSubmit(form, out, run) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(out);
    try {
      await run();
    } catch (err) {
      replace(out, errorBox(err));
    }
  });
}

// The JSON of a textarea, or an error naming it.
export function readJson(textarea, name) {
  const text = textarea.value.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not valid JSON: ${err.message}`);
  }
}

// A list read page by page into `list`: fetch(cursor) gives the API's envelope (cursor null: the first page),
// draw(rows) the table, none() what an empty list shows. While there are more, a button (label `more`,
// attributes `moreAttrs`) appends the next page. loaded(reset, before) runs on each page, before it is shown;
// a failure goes to onError (by default, in place of the list).
export function pager(list, { fetch, draw, none, more = "More", moreAttrs = {}, loaded, onError }) {
  const state = { rows: [], cursor: null };
  async function load(reset) {
    try {
      const page = await fetch(reset ? null : state.cursor);
      const before = state.rows;
      state.rows = reset ? page.data : before.concat(page.data);
      state.cursor = page.meta && page.meta.next_cursor;
      if (loaded) loaded(reset, before);
      show();
    } catch (err) {
      if (onError) onError(err);
      else replace(list, errorBox(err));
    }
  }
  function show() {
    replace(list, state.rows.length ? [draw(state.rows), state.cursor
      ? h("button", { type: "button", ...moreAttrs, onclick: () => load(false) }, more) : null] : none());
  }
  return { load, state };
}
