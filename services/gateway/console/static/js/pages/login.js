// Log in with email and password; the access token stays in this tab only.

import { api, setToken } from "../api.js";
import { field, h, onSubmit, replace } from "../dom.js";

function safeNext(params) {
  const next = params.get("next") || "";
  // Only a console path of this origin: never an open redirect.
  return /^\/console\/[a-z]+(\?[^#]*)?$/.test(next) ? next : "/console/executions";
}

export async function render(ctx) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password",
    required: true });
  const problem = h("div");
  const form = h("form", { class: "card narrow", id: "login-form" },
    field("Email", email),
    field("Password", password),
    h("button", { type: "submit", class: "primary" }, "Log in"),
    problem,
    h("p", { class: "muted" }, "No account yet? Register one with POST /api/auth/register (see the README)."));
  onSubmit(form, problem, async () => {
    const out = await api("POST", "/api/auth/login", { email: email.value, password: password.value });
    setToken(out.data.access_token);
    password.value = "";
    location.assign(safeNext(ctx.params));
  });
  replace(ctx.content, form);
  email.focus();
}
