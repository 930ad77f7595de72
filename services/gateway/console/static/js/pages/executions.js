// Executions, newest first: filters kept in the address, and the first page refreshed live by polling.

import { api, query } from "../api.js";
import { empty, errorBox, field, h, isoOf, pager, replace, statusBadge, table, when } from "../dom.js";

const POLL_MS = 2000;
const STATUSES = ["", "running", "succeeded", "failed", "dead", "skipped", "filtered"];
const TRIGGERS = ["", "webhook", "schedule", "manual", "replay"];
// event_id, trigger, since and until are read by the history API; a gateway without it ignores them.
const FILTERS = ["workflow_id", "status", "event_id", "trigger", "since", "until"];

function localOf(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function select(name, values, labels = {}) {
  return h("select", { name }, values.map((v) => h("option", { value: v }, labels[v] ?? (v || "any"))));
}

export async function render(ctx) {
  const controls = {
    workflow_id: select("workflow_id", [""], { "": "any workflow" }),
    status: select("status", STATUSES),
    event_id: h("input", { name: "event_id", placeholder: "event id", spellcheck: "false" }),
    trigger: select("trigger", TRIGGERS),
    since: h("input", { name: "since", type: "datetime-local" }),
    until: h("input", { name: "until", type: "datetime-local" }),
  };
  const live = h("input", { type: "checkbox", id: "live", checked: true });
  const stamp = h("span", { class: "muted", id: "refreshed" });
  const list = h("div", { id: "execution-list" });
  const problem = h("div", { id: "poll-error" });
  const form = h("form", { class: "filters card", id: "filters" },
    field("Workflow", controls.workflow_id),
    field("Status", controls.status),
    field("Trigger", controls.trigger),
    field("Event id", controls.event_id),
    field("Since", controls.since),
    field("Until", controls.until),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Apply"),
      h("label", { class: "inline" }, live, " Live"), stamp));

  const names = new Map();
  try {
    const page = await api("GET", "/api/workflows?limit=200");
    for (const wf of page.data) {
      names.set(wf.id, wf.name);
      controls.workflow_id.append(h("option", { value: wf.id }, wf.name));
    }
  } catch (err) {
    problem.append(errorBox(err));
  }
  for (const key of FILTERS) {
    const value = ctx.params.get(key) || "";
    controls[key].value = key === "since" || key === "until" ? localOf(value) : value;
  }

  let seen = null; // ids on the last refresh: new ones are marked
  let timer = null;

  function filters() {
    const out = {};
    for (const key of FILTERS) {
      const value = key === "since" || key === "until" ? isoOf(controls[key].value) : controls[key].value.trim();
      if (value) out[key] = value;
    }
    return out;
  }

  const { load, state } = pager(list, {
    fetch: (cursor) => {
      if (cursor) {
        live.checked = false; // an older page stays put
        schedule();
      }
      return api("GET", `/api/executions${query({ ...filters(), limit: 50, cursor })}`);
    },
    loaded: (reset, before) => {
      if (!reset) return;
      const ids = new Set(before.map((e) => e.id));
      seen = seen === null ? new Set(state.rows.map((e) => e.id)) : ids;
      replace(problem);
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    },
    onError: (err) => replace(problem, errorBox(err)),
    none: () => empty(Object.keys(filters()).length > 0
      ? "No execution matches these filters. Widen them, or clear them to see everything."
      : "No executions yet. Send a signed webhook to a workflow (its URL is on the workflow's page), "
        + "or wait for a schedule to fire: new executions appear here without a reload.",
    h("a", { href: "/console/workflows" }, "Go to workflows")),
    more: "Older",
    moreAttrs: { id: "more" },
    draw: (rows) => table([
      ["Status", (e) => statusBadge(e.status)],
      ["Execution", (e) => h("a", { href: `/console/execution?id=${e.id}`, class: "execution-link",
        "data-event-id": e.event_id }, e.id.slice(0, 8))],
      ["Workflow", (e) => names.get(e.workflow_id) ?? e.workflow_id.slice(0, 8)],
      ["Trigger", (e) => e.trigger],
      ["Attempts", (e) => String(e.attempts)],
      ["Started", (e) => when(e.started_at)],
      ["Duration", (e) => (e.duration_ms == null ? "—" : `${e.duration_ms} ms`)],
      ["Error", (e) => h("span", { class: "error clip" }, e.error ?? "")],
    ], rows.map((e) => ({ ...e, __attrs: { "data-id": e.id, class: seen && !seen.has(e.id) ? "fresh" : "" } }))),
  });
  const refresh = () => load(true);

  function schedule() {
    clearTimeout(timer);
    if (live.checked) {
      timer = setTimeout(async () => {
        if (!document.hidden) await refresh();
        schedule();
      }, POLL_MS);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = query(filters());
    history.replaceState(null, "", `/console/executions${q}`);
    seen = null;
    await refresh();
    schedule();
  });
  live.addEventListener("change", schedule);

  replace(ctx.content, form, problem, list);
  await refresh();
  schedule();
}
