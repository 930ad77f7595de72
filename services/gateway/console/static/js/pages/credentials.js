// Credentials: create and delete.  A secret goes to the API once and is never shown again (the API
// never returns it); the form's secret fields are cleared as soon as it is sent.

import { allPages, api } from "../api.js";
import { action, empty, field, h, onSubmit, pager, readJson, replace, table, when } from "../dom.js";

const SECRET_FIELDS = {
  slack: [["webhook_url", "Webhook URL", "password"], ["bot_token", "Bot token (xoxb-...)", "password"]],
  discord: [["webhook_url", "Webhook URL", "password"]],
  openweather: [["api_key", "API key", "password"]],
  http: [["headers", "Headers (JSON object)", "json"]],
};
// Types whose secret holds exactly one of their fields: a choice shows one input, named after the chosen field.
const ONE_OF = new Set(["slack"]);

function secretInput(key, label, kind) {
  const control = kind === "json"
    ? h("textarea", { rows: 4, class: "code secret", "data-key": key, spellcheck: "false", autocomplete: "off",
      placeholder: "{\"Authorization\": \"Bearer ...\"}" })
    : h("input", { type: "password", class: "secret", "data-key": key, autocomplete: "off" });
  return field(label, control);
}

function secretInputs(type) {
  const fields = SECRET_FIELDS[type];
  if (!ONE_OF.has(type)) return fields.map(([key, label, kind]) => secretInput(key, label, kind));
  const choice = h("select", { name: "secret-field" }, fields.map(([key, label]) => h("option", { value: key }, label)));
  const input = h("div");
  const show = () => {
    const [key, label, kind] = fields.find(([k]) => k === choice.value);
    replace(input, secretInput(key, label, kind));
  };
  choice.addEventListener("change", show);
  show();
  return [field("Secret kind", choice), input];
}

function createForm(onCreated) {
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const type = h("select", { name: "type" }, Object.keys(SECRET_FIELDS).map((t) => h("option", { value: t }, t)));
  const secrets = h("div");
  const result = h("div");
  const showSecrets = () => replace(secrets, secretInputs(type.value));
  type.addEventListener("change", showSecrets);
  showSecrets();
  const form = h("form", { class: "card", id: "create-credential" },
    h("h2", {}, "New credential"), field("Name", name), field("Type", type), secrets,
    h("button", { type: "submit", class: "primary" }, "Store"), result);
  onSubmit(form, result, async () => {
    const controls = [...secrets.querySelectorAll(".secret")];
    const secret = {};
    for (const control of controls) {
      secret[control.dataset.key] = control.tagName === "TEXTAREA" ? readJson(control, "Headers") ?? {}
        : control.value;
    }
    const out = await api("POST", "/api/credentials", { name: name.value, type: type.value, secret });
    for (const control of controls) control.value = "";
    name.value = "";
    replace(result, h("div", { class: "flash ok" }, `Stored "${out.data.name}". Its secret will not be shown again.`));
    await onCreated();
  });
  return form;
}

// The first click only arms the button ("Confirm delete"); the second one deletes.
function deleteButton(credential, reload) {
  let armed = false;
  return action("Delete", async (button) => {
    if (!armed) {
      armed = true;
      button.textContent = "Confirm delete";
      return "";
    }
    await api("DELETE", `/api/credentials/${credential.id}`);
    await reload();
  }, { class: "danger" });
}

export async function render(ctx) {
  const list = h("div", { id: "credential-list" });
  const { load } = pager(list, {
    fetch: async () => ({ data: await allPages("/api/credentials", { limit: 100 }) }), // all at once: no "More"
    none: () => empty("No credentials yet. Store one below, then use its id as an action's credential_id."),
    draw: (rows) => table([
      ["Name", (c) => c.name],
      ["Type", (c) => c.type],
      ["Id", (c) => h("code", {}, c.id)],
      ["Created", (c) => when(c.created_at)],
      ["", (c) => deleteButton(c, () => load(true))],
    ], rows),
  });
  replace(ctx.content, list, createForm(() => load(true)));
  await load(true);
}
