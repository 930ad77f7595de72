// API keys: create (the key is shown once), list with last use, revoke.  Served by /api/keys.

import { api } from "../api.js";
import { action, empty, field, h, onSubmit, pager, replace, table, when } from "../dom.js";

const SCOPES = ["read", "write", "replay", "admin"];

export async function render(ctx) {
  const list = h("div", { id: "key-list" });
  const name = h("input", { name: "name", required: true, maxlength: 200, placeholder: "ci deploy" });
  const boxes = SCOPES.map((s) => h("input", { type: "checkbox", value: s, checked: s === "read" }));
  const result = h("div", { id: "key-result" });
  const form = h("form", { class: "card", id: "create-key" },
    h("h2", {}, "New API key"), field("Name", name),
    h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"),
      boxes.map((box) => h("label", { class: "inline" }, box, ` ${box.value}`))),
    h("button", { type: "submit", class: "primary" }, "Create"), result);

  const { load } = pager(list, {
    fetch: async () => ({ data: (await api("GET", "/api/keys")).data }), // one page: no "More" button
    none: () => empty("No API keys yet. Create one below for a script or CI job: it is shown once, then "
      + "only its name, scopes and last use."),
    draw: (rows) => table([
      ["Name", (k) => k.name ?? "—"],
      ["Scopes", (k) => (k.scopes ?? []).join(", ")],
      ["Created", (k) => when(k.created_at)],
      ["Last used", (k) => when(k.last_used_at)],
      ["", (k) => (k.revoked_at ? `revoked ${when(k.revoked_at)}` : action("Revoke", async () => {
        await api("DELETE", `/api/keys/${encodeURIComponent(k.id)}`);
        await load(true);
      }, { class: "danger" }))],
    ], rows),
  });

  onSubmit(form, result, async () => {
    const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
    const out = (await api("POST", "/api/keys", { name: name.value, scopes })).data;
    replace(result, h("div", { class: "flash ok" }, "Key (shown once: copy it now): ",
      h("code", { id: "new-key" }, out.key ?? "")));
    await load(true);
  });
  replace(ctx.content, list, form);
  await load(true);
}
