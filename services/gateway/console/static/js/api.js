// The one door to the public API: the bearer token (this tab's sessionStorage, never a cookie),
// the envelope, and the API's own error message on every failure.

const TOKEN_KEY = "ipaas.console.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  // The API's message, with the fields a 422 names.
  describe() {
    const fields = Array.isArray(this.details)
      ? this.details.map((d) => [d.loc ?? d.field ?? d.name, d.msg ?? d.message].filter(Boolean).join(": "))
      : [];
    const head = `${this.message} (${this.code}${this.status ? `, HTTP ${this.status}` : ""})`;
    return fields.length ? `${head}: ${fields.join("; ")}` : head;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function loginUrl() {
  const next = location.pathname + location.search;
  return `/console/login?next=${encodeURIComponent(next)}`;
}

// method, path (/api/...), optional JSON body; resolves to the envelope ({data, meta}).
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", `the gateway cannot be reached (${err.message})`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : {};
    const failure = new ApiError(response.status, error.code ?? "http_error",
      error.message ?? `HTTP ${response.status}`, error.details);
    if (response.status === 401 && bearer && !path.startsWith("/api/auth/")) {
      setToken(null); // expired or revoked: log in again, then come back here
      location.assign(loginUrl());
    }
    throw failure;
  }
  return json ?? {};
}

// A query string from the non-empty values of an object.
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// The rows of every page of a list (path: /api/...; params: its query), in order.
export async function allPages(path, params) {
  let rows = [];
  let cursor = null;
  do {
    const page = await api("GET", `${path}${query({ ...params, cursor })}`);
    rows = rows.concat(page.data);
    cursor = page.meta && page.meta.next_cursor;
  } while (cursor);
  return rows;
}
