// One workflow: its state, its steps (a multi-step one), webhook (URL and secret rotation), versions
// with a diff and rollback, dry-run.

import { allPages, api } from "../api.js";
import { diffLines } from "../diff.js";
import { action, empty, errorBox, field, h, pretty, readJson, replace, statusBadge, table, when } from "../dom.js";

// The definition in the form it was saved: one action, or steps.
function workOf(wf) {
  return wf.steps ? { steps: wf.steps } : { action: wf.action };
}

function definitionOf(wf) {
  return { name: wf.name, trigger: wf.trigger, ...workOf(wf), is_active: wf.is_active };
}

export function actionSummary(wf) {
  if (!wf.steps) return wf.action ? wf.action.type : "—";
  return wf.steps.map((s) => `${s.id} (${s.action ? s.action.type : "filter"})`).join(" → ");
}

function summary(wf, reload) {
  const next = !wf.is_active;
  return h("section", { class: "card", id: "summary" },
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", {}, statusBadge(wf.is_active ? "active" : "inactive")),
      h("dt", {}, "Version"), h("dd", { id: "current-version" }, String(wf.version)),
      h("dt", {}, "Trigger"), h("dd", {}, h("code", {}, JSON.stringify(wf.trigger))),
      h("dt", {}, wf.steps ? "Steps" : "Action"), h("dd", {}, actionSummary(wf)),
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, wf.id)),
      h("dt", {}, "Updated"), h("dd", {}, when(wf.updated_at)),
      wf.schedule_error ? [h("dt", {}, "Schedule error"), h("dd", { class: "error" }, wf.schedule_error)] : null),
    h("div", { class: "row" },
      action(next ? "Enable" : "Disable", async () => {
        await api("PATCH", `/api/workflows/${wf.id}`, { is_active: next });
        await reload();
      }, { id: "toggle-active" }),
      h("a", { href: `/console/executions?workflow_id=${wf.id}` }, "Executions"),
      h("a", { href: `/console/dlq?workflow_id=${wf.id}` }, "Dead letters")));
}

// A multi-step workflow's steps, in order: what each one is, and its own policies.
function stepsTable(wf) {
  if (!wf.steps) return null;
  const kind = (s) => (s.action ? s.action.type : "filter");
  const what = (s) => (s.action
    ? (s.action.credential_id ? ["credential ", h("code", {}, s.action.credential_id)] : "—")
    : h("code", {}, s.filter.condition));
  const policy = (s) => [
    s.timeout_seconds != null ? `timeout ${s.timeout_seconds} s` : null,
    s.retry ? `at most ${s.retry.max_attempts} attempt(s)` : null,
    s.continue_on_error ? "continues on error" : null,
  ].filter(Boolean).join(", ") || "—";
  const rows = wf.steps.map((s, i) => ({ ...s, __attrs: { "data-step-id": s.id }, n: i + 1 }));
  return h("section", { class: "card", id: "steps" }, h("h2", {}, "Steps"), table([
    ["#", (s) => String(s.n)],
    ["Step", (s) => h("code", {}, s.id)],
    ["Type", kind],
    ["Uses", what],
    ["Policy", policy],
  ], rows));
}

function webhook(wf) {
  if (!wf.webhook) return null;
  const secret = h("div", { id: "rotation" });
  return h("section", { class: "card", id: "webhook" },
    h("h2", {}, "Webhook"),
    h("p", {}, "URL: ", h("code", { id: "webhook-url" }, location.origin + wf.webhook.url)),
    h("p", { class: "muted" }, "Sign requests with the Standard Webhooks headers (webhook-id, webhook-timestamp, "
      + "webhook-signature). The secret is shown only when it is created or rotated."),
    action("Rotate secret", async () => {
      const out = await api("POST", `/api/workflows/${wf.id}/webhook-secret`);
      const until = out.data.previous_valid_until;
      replace(secret, h("div", { class: "flash ok" },
        h("p", {}, "New secret (shown once: copy it now): ", h("code", { id: "rotated-secret" }, out.data.webhook.secret)),
        h("p", {}, until ? `The previous secret stays valid until ${when(until)}.` : "The previous secret no longer works.")));
      return "";
    }, { id: "rotate-secret" }),
    secret);
}

function versions(wf, rows, reload) {
  const section = h("section", { class: "card", id: "versions" }, h("h2", {}, "Versions"));
  if (!rows.length) {
    section.append(empty("No versions listed."));
    return section;
  }
  section.append(table([
    ["Version", (v) => String(v.version)],
    ["Created", (v) => when(v.created_at)],
    ["", (v) => (v.current ? statusBadge("current") : action("Roll back to this", async () => {
      await api("POST", `/api/workflows/${wf.id}/rollback`, { version: v.version });
      await reload();
    }, { "data-version": v.version, class: "rollback" }))],
  ], rows));
  const options = (selected) => rows.map((v) => h("option", { value: v.version, selected: v.version === selected },
    `v${v.version}`));
  const newest = rows[rows.length - 1].version;
  const older = rows.length > 1 ? rows[rows.length - 2].version : newest;
  const from = h("select", { id: "diff-from" }, options(older));
  const to = h("select", { id: "diff-to" }, options(newest));
  const out = h("pre", { class: "diff", id: "diff" });
  const byVersion = new Map(rows.map((v) => [String(v.version), v.definition]));
  const show = () => {
    const lines = diffLines(pretty(byVersion.get(from.value)), pretty(byVersion.get(to.value)));
    const changed = lines.some((l) => l.op !== " ");
    replace(out, changed
      ? lines.map((l) => h("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "same" }, `${l.op} ${l.line}\n`))
      : "No difference between these versions.");
  };
  from.addEventListener("change", show);
  to.addEventListener("change", show);
  section.append(h("h3", {}, "Diff"), h("div", { class: "row" }, field("From", from), field("To", to)), out);
  show();
  return section;
}

function editor(wf, reload) {
  const text = h("textarea", { rows: 14, class: "code", id: "definition", spellcheck: "false" });
  text.value = pretty(definitionOf(wf));
  return h("section", { class: "card", id: "edit" },
    h("h2", {}, "Definition"),
    h("p", { class: "muted" }, "Saving writes a new version; the old ones stay, for a diff or a rollback."),
    field("Name, trigger, action and is_active (JSON)", text),
    action("Save as a new version", async () => {
      await api("PUT", `/api/workflows/${wf.id}`, readJson(text, "The definition"));
      await reload();
    }, { id: "save-definition", class: "primary" }));
}

function dryRun(wf) {
  const payload = h("textarea", { rows: 6, class: "code", id: "dry-run-payload", spellcheck: "false" });
  payload.value = "{\n  \"order_id\": \"A-1\"\n}";
  const out = h("div", { id: "dry-run-result" });
  return h("section", { class: "card", id: "dry-run" },
    h("h2", {}, "Dry run"),
    h("p", { class: "muted" }, "Runs the current definition's action for real with this payload, and records "
      + "no execution."),
    field("Payload (JSON)", payload),
    action("Dry run", async () => {
      replace(out);
      const body = { workflow: { name: wf.name, trigger: wf.trigger, ...workOf(wf) },
        payload: readJson(payload, "The payload") ?? null };
      const res = (await api("POST", "/api/workflows/dry-run", body)).data;
      replace(out, h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", {}, statusBadge(res.status)),
        h("dt", {}, "Duration"), h("dd", {}, res.duration_ms == null ? "—" : `${res.duration_ms} ms`),
        res.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, res.error)] : null,
        res.steps ? [h("dt", {}, "Steps"), h("dd", {}, h("pre", {}, pretty(res.steps)))] : null,
        h("dt", {}, "Output"), h("dd", {}, h("pre", {}, pretty(res.output)))));
      return "";
    }),
    out);
}

export async function render(ctx) {
  const id = ctx.params.get("id");
  if (!id) {
    replace(ctx.content, empty("No workflow chosen.", h("a", { href: "/console/workflows" }, "Pick one from the list")));
    return;
  }
  async function load() {
    try {
      const wf = (await api("GET", `/api/workflows/${encodeURIComponent(id)}`)).data;
      ctx.title(wf.name);
      const rows = await allPages(`/api/workflows/${wf.id}/versions`, { limit: 200 });
      replace(ctx.content, summary(wf, load), stepsTable(wf), webhook(wf), versions(wf, rows, load), editor(wf, load),
        dryRun(wf));
    } catch (err) {
      replace(ctx.content, errorBox(err), h("a", { href: "/console/workflows" }, "Back to workflows"));
    }
  }
  await load();
}
