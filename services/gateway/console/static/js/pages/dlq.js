// Dead letters: replay one, or replay every one a filter matches (a job whose progress is polled).

import { api, query } from "../api.js";
import { action, empty, errorBox, field, h, isoOf, onSubmit, pager, pretty, replace, table, when } from "../dom.js";

const POLL_MS = 1000;

function bulkForm(workflowId, afterwards) {
  const workflow = h("input", { name: "workflow_id", value: workflowId, placeholder: "workflow id",
    spellcheck: "false" });
  const reason = h("input", { name: "reason", placeholder: "part of the reason, e.g. 503" });
  const since = h("input", { name: "since", type: "datetime-local" });
  const until = h("input", { name: "until", type: "datetime-local" });
  const progress = h("div", { id: "bulk-progress" });
  const form = h("form", { class: "card filters", id: "bulk-replay" },
    h("h2", {}, "Replay by filter"),
    field("Workflow id", workflow), field("Reason contains", reason), field("Dead since", since),
    field("Dead until", until),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Replay all matching")),
    progress);

  async function follow(jobId) {
    try {
      const job = (await api("GET", `/api/dlq/replay/${encodeURIComponent(jobId)}`)).data;
      const percent = Math.round(Number(job.percent ?? 0));
      replace(progress, h("p", {}, `Job ${jobId}: ${job.state}, ${job.done} of ${job.total}`
        + (job.skipped ? ` (${job.skipped} already replayed)` : "")),
      h("progress", { max: 100, value: percent }, `${percent}%`), ` ${percent}%`);
      if (job.state !== "done") setTimeout(() => follow(jobId), POLL_MS);
      else await afterwards();
    } catch (err) {
      replace(progress, errorBox(err));
    }
  }

  onSubmit(form, progress, async () => {
    const body = {};
    if (workflow.value.trim()) body.workflow_id = workflow.value.trim();
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (isoOf(since.value)) body.since = isoOf(since.value);
    if (isoOf(until.value)) body.until = isoOf(until.value);
    replace(progress, h("p", { class: "muted" }, "Starting…"));
    const job = (await api("POST", "/api/dlq/replay", body)).data;
    await follow(job.id ?? job.job_id);
  });
  return form;
}

export async function render(ctx) {
  const workflowId = ctx.params.get("workflow_id") || "";
  const includeReplayed = h("input", { type: "checkbox", id: "include-replayed" });
  const list = h("div", { id: "dlq-list" });
  const { load } = pager(list, {
    fetch: (cursor) => api("GET", `/api/dlq${query({ workflow_id: workflowId, limit: 50, cursor,
      include_replayed: includeReplayed.checked ? "true" : "" })}`),
    none: () => empty("No dead letters. An event lands here when its action fails for good (a 4xx, or "
      + "every retry spent); fix the cause, then replay it from this page."),
    more: "Older",
    draw: (rows) => table([
      ["Event", (d) => h("code", {}, d.event_id.slice(0, 8))],
      ["Workflow", (d) => h("a", { href: `/console/workflow?id=${d.workflow_id}` }, d.workflow_id.slice(0, 8))],
      ["Reason", (d) => h("span", { class: "error" }, d.reason)],
      ["Last error", (d) => (d.last_error === undefined ? "—" : d.last_error ?? "")],
      ["Payload", (d) => (d.payload === undefined ? "—" : h("pre", { class: "clip" }, pretty(d.payload)))],
      ["Attempts", (d) => String(d.attempts)],
      ["Dead at", (d) => when(d.dead_at)],
      ["", (d) => (d.replayed_at ? `replayed ${when(d.replayed_at)}` : action("Replay", async () => {
        const out = (await api("POST", `/api/dlq/${d.event_id}/replay`)).data;
        d.replayed_at = out.replayed_at;
        return `replayed ${when(out.replayed_at)}`;
      }, { class: "replay", "data-event-id": d.event_id }))],
    ], rows),
  });

  includeReplayed.addEventListener("change", () => load(true));
  replace(ctx.content,
    h("div", { class: "row" }, h("label", { class: "inline" }, includeReplayed, " Show replayed ones too"),
      workflowId ? h("span", { class: "muted" }, `Workflow ${workflowId}`) : null),
    list, bulkForm(workflowId, () => load(true)));
  await load(true);
}
