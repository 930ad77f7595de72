// One execution: its facts, input, every attempt, output, error, and the link to its trace.

import { api } from "../api.js";
import { empty, errorBox, h, pretty, replace, statusBadge, table, when } from "../dom.js";

const POLL_MS = 2000;

export function traceLink(template, traceId) {
  if (!traceId) return "—";
  if (!template) return h("code", { id: "trace-id" }, traceId);
  const href = template.split("{trace_id}").join(encodeURIComponent(traceId));
  return h("a", { href, id: "trace-link", target: "_blank", rel: "noopener noreferrer" }, traceId);
}

function attempts(e) {
  const rows = Array.isArray(e.attempt_history) ? e.attempt_history : null;
  const section = h("section", { class: "card", id: "attempts" }, h("h2", {}, "Attempts"));
  if (rows === null) {
    section.append(h("p", { class: "muted" }, `${e.attempts} attempt(s). This gateway does not return the `
      + "attempts one by one (the execution history API is not deployed): only the last error is shown."));
  } else if (!rows.length) {
    section.append(empty("No attempt has finished yet."));
  } else {
    section.append(table([
      ["#", (a) => String(a.attempt)],
      ["Outcome", (a) => statusBadge(a.outcome)],
      ["HTTP", (a) => (a.http_status == null ? "—" : String(a.http_status))],
      ["Started", (a) => when(a.started_at)],
      ["Finished", (a) => when(a.finished_at)],
      ["Error", (a) => h("span", { class: "error" }, a.error ?? "")],
    ], rows));
  }
  return section;
}

// A multi-step workflow's checkpoints: each step that ran, with its outcome and output.
function steps(e) {
  if (!Array.isArray(e.steps)) return null;
  return h("section", { class: "card", id: "steps" }, h("h2", {}, "Steps"), table([
    ["Step", (s) => h("code", {}, s.id)],
    ["Status", (s) => statusBadge(s.continued ? "failed (continued)" : s.status)],
    ["Attempts", (s) => String(s.attempts)],
    ["Duration", (s) => (s.duration_ms == null ? "—" : `${s.duration_ms} ms`)],
    ["Output", (s) => h("pre", {}, s.output == null ? "null" : pretty(s.output))],
    ["Error", (s) => h("span", { class: "error" }, s.error ?? "")],
  ], e.steps));
}

function block(title, id, value, missing) {
  return h("section", { class: "card", id },
    h("h2", {}, title),
    value === undefined ? h("p", { class: "muted" }, missing) : h("pre", {}, value === null ? "null" : pretty(value)));
}

export async function render(ctx) {
  const id = ctx.params.get("id");
  if (!id) {
    replace(ctx.content, empty("No execution chosen.", h("a", { href: "/console/executions" }, "Pick one")));
    return;
  }
  async function load() {
    let e;
    try {
      e = (await api("GET", `/api/executions/${encodeURIComponent(id)}`)).data;
    } catch (err) {
      replace(ctx.content, errorBox(err), h("a", { href: "/console/executions" }, "Back to executions"));
      return;
    }
    ctx.title(`Execution ${e.id.slice(0, 8)}`);
    replace(ctx.content,
      h("section", { class: "card", id: "facts" }, h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", { id: "status" }, statusBadge(e.status)),
        h("dt", {}, "Workflow"), h("dd", {}, h("a", { href: `/console/workflow?id=${e.workflow_id}` },
          e.workflow_id), ` (version ${e.workflow_version})`),
        h("dt", {}, "Event"), h("dd", {}, h("code", { id: "event-id" }, e.event_id)),
        h("dt", {}, "Trigger"), h("dd", {}, e.trigger),
        h("dt", {}, "Attempts"), h("dd", {}, String(e.attempts)),
        h("dt", {}, "Started"), h("dd", {}, when(e.started_at)),
        h("dt", {}, "Finished"), h("dd", {}, when(e.finished_at)),
        h("dt", {}, "Duration"), h("dd", {}, e.duration_ms == null ? "—" : `${e.duration_ms} ms`),
        h("dt", {}, "Trace"), h("dd", {}, traceLink(ctx.traceUrlTemplate, e.trace_id)))),
      e.error ? h("section", { class: "card", id: "error" }, h("h2", {}, "Error"),
        h("pre", { class: "error" }, e.error)) : null,
      block("Input", "input", e.input, "This gateway does not return the input (the execution history API is "
        + "not deployed)."),
      attempts(e),
      steps(e),
      block("Output", "output", e.output ?? null, ""));
    if (e.status === "running") setTimeout(load, POLL_MS); // until it ends
  }
  await load();
}
