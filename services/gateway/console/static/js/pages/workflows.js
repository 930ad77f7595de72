// Workflows: the list, and a form that creates one (its webhook secret is shown once, here).

import { api, query } from "../api.js";
import { empty, field, h, onSubmit, pager, readJson, replace, statusBadge, table, when } from "../dom.js";

const EXAMPLE = {
  trigger: { type: "webhook" },
  action: {
    type: "http_request",
    config: { method: "POST", url: "https://example.com/orders", body: { id: "{{ payload.order_id }}" } },
  },
  is_active: true,
};

function trigger(wf) {
  const t = wf.trigger || {};
  if (t.type === "schedule") return t.cron ? `schedule ${t.cron}` : `every ${t.interval_seconds}s`;
  return t.type || "—";
}

function createForm(onCreated) {
  const name = h("input", { name: "name", required: true, maxlength: 200, placeholder: "orders to CRM" });
  const definition = h("textarea", { name: "definition", rows: 12, spellcheck: "false", class: "code" });
  definition.value = JSON.stringify(EXAMPLE, null, 2);
  const result = h("div");
  const form = h("form", { class: "card", id: "create-workflow" },
    h("h2", {}, "New workflow"),
    field("Name", name),
    field("Trigger, action and is_active (JSON)", definition,
      "The API's format: see API.md. Templates use {{ payload.<path> }}."),
    h("button", { type: "submit", class: "primary" }, "Create"),
    result);
  onSubmit(form, result, async () => {
    const body = { ...readJson(definition, "The definition"), name: name.value };
    const out = await api("POST", "/api/workflows", body);
    const wf = out.data;
    const parts = [h("p", {}, "Created ", h("a", { href: `/console/workflow?id=${wf.id}` }, wf.name),
      ` (version ${wf.version}).`)];
    if (wf.webhook && wf.webhook.secret) {
      parts.push(h("p", {}, "Webhook URL: ", h("code", { id: "new-webhook-url" }, location.origin + wf.webhook.url)));
      parts.push(h("p", {}, "Webhook secret (shown once: copy it now): ",
        h("code", { id: "new-webhook-secret" }, wf.webhook.secret)));
    }
    replace(result, h("div", { class: "flash ok", id: "created" }, parts));
    await onCreated();
  });
  return form;
}

export async function render(ctx) {
  const list = h("div", { id: "workflow-list" });
  const { load } = pager(list, {
    fetch: (cursor) => api("GET", `/api/workflows${query({ limit: 50, cursor })}`),
    none: () => empty("No workflows yet. Create one with the form below: a webhook trigger gives you a URL "
      + "and a secret to send events to."),
    draw: (rows) => table([
      ["Name", (wf) => h("a", { href: `/console/workflow?id=${wf.id}` }, wf.name)],
      ["Trigger", trigger],
      ["Action", (wf) => (wf.action ? wf.action.type : wf.steps ? `${wf.steps.length} steps` : "—")],
      ["State", (wf) => statusBadge(wf.is_active ? "active" : "inactive")],
      ["Version", (wf) => String(wf.version)],
      ["Updated", (wf) => when(wf.updated_at)],
    ], rows),
  });

  replace(ctx.content, list, createForm(() => load(true)));
  await load(true);
}
