// Entry point of every page: the page named by <body data-page> renders itself into #content.

import { api, loginUrl, setToken, token } from "./api.js";
import { errorBox, flash, replace } from "./dom.js";

async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // the token may have expired already: forgetting it is what matters
  }
  setToken(null);
  location.assign("/console/login");
}

async function start() {
  const body = document.body;
  const name = body.dataset.page;
  const content = document.getElementById("content");
  const button = document.getElementById("logout");
  if (button) button.addEventListener("click", logout);
  if (name !== "login" && !token()) {
    location.replace(loginUrl());
    return;
  }
  const ctx = {
    content,
    params: new URLSearchParams(location.search),
    traceUrlTemplate: body.dataset.traceUrlTemplate || "",
    title: (text) => {
      document.getElementById("title").textContent = text;
      document.title = `${text} · ipaas console`;
    },
  };
  try {
    const page = await import(`./pages/${name}.js`);
    replace(content);
    await page.render(ctx);
  } catch (err) {
    flash("");
    replace(content, errorBox(err));
  }
}

start();
