// System: what the public API tells about the platform's state, and what it does not.

import { errorText, h, replace, statusBadge, table } from "../dom.js";

const POLL_MS = 5000;

const NOT_EXPOSED = [
  ["Consumer lag (pending events)", "ipaas_executor_consumer_pending and ipaas_executor_consumer_ack_pending on "
    + "the executors' /metrics"],
  ["In flight per executor replica", "ipaas_executor_in_flight on each executor's /metrics"],
  ["Open circuit breakers", "ipaas_executor_breakers_open on each executor's /metrics"],
  ["Readiness of auth, scheduler and executors", "each service's /health/ready on its own port"],
];

async function readiness() {
  // Public, outside the envelope: {"status", "checks": {name: bool}}; 503 when not ready.
  const response = await fetch("/health/ready", { cache: "no-store", credentials: "omit" });
  const body = await response.json();
  return { http: response.status, ...body };
}

export async function render(ctx) {
  const ready = h("section", { class: "card", id: "gateway-ready" }, h("h2", {}, "Gateway readiness"));
  const state = h("div");
  ready.append(state);
  const missing = h("section", { class: "card", id: "not-exposed" },
    h("h2", {}, "Not exposed by the public API"),
    h("p", {}, "The console uses only the public API. These figures exist, but only on the services' own ports, "
      + "which are kept off the public network; read them there (or in your metrics stack):"),
    table([["Figure", (r) => r[0]], ["Where it is", (r) => r[1]]], NOT_EXPOSED));

  async function refresh() {
    try {
      const r = await readiness();
      const checks = Object.entries(r.checks ?? {});
      replace(state, h("p", {}, statusBadge(r.status), ` HTTP ${r.http}, checked ${new Date().toLocaleTimeString()}`),
        checks.length ? table([["Check", (c) => c[0]], ["OK", (c) => statusBadge(c[1] ? "ok" : "failing")]], checks)
          : null);
    } catch (err) {
      replace(state, h("div", { class: "flash error" }, `The gateway's /health/ready did not answer: ${errorText(err)}`));
    }
    setTimeout(refresh, POLL_MS);
  }
  replace(ctx.content, ready, missing);
  await refresh();
}
