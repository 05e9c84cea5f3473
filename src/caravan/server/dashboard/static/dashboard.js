// caravan dashboard: live fragments over Server-Sent Events, forms without page reloads,
// running durations that count, and logs that follow. The pages work without this script
// (forms post and redirect); it only makes them live.
"use strict";

(function () {
  const connection = () => document.getElementById("connection");

  // Fragments ---------------------------------------------------------------------------------
  // Swap a fragment's content, keeping what the user typed (and where the cursor was) in the
  // fields of forms that the new content still has.
  function swap(message) {
    const target = document.getElementById(message.id);
    if (!target || target.dataset.digest === message.digest) return;
    const typed = new Map();
    let focused = null;
    target.querySelectorAll("input:not([type=hidden]), textarea").forEach((field) => {
      const key = fieldKey(field);
      if (field.value !== field.defaultValue) typed.set(key, field.value);
      if (field === document.activeElement) focused = key;
    });
    const open = new Set();
    target.querySelectorAll("details[open]").forEach((d) => open.add(detailsKey(d)));
    target.innerHTML = message.html;
    target.dataset.digest = message.digest;
    target.querySelectorAll("details").forEach((d) => {
      if (open.has(detailsKey(d))) d.open = true;
    });
    target.querySelectorAll("input:not([type=hidden]), textarea").forEach((field) => {
      const key = fieldKey(field);
      if (typed.has(key)) field.value = typed.get(key);
      if (key === focused) field.focus();
    });
    enhance(target);
    tick();
  }

  function formIdentity(form) {
    if (!form) return "";
    const hidden = Array.from(form.querySelectorAll("input[type=hidden]:not([name=csrf])"));
    return form.getAttribute("action") + "?" + hidden.map((h) => h.name + "=" + h.value).join("&");
  }

  function fieldKey(field) {
    return formIdentity(field.form) + "#" + field.name;
  }

  function detailsKey(details) {
    return formIdentity(details.querySelector("form"));
  }

  function connect(url) {
    const source = new EventSource(url);
    source.addEventListener("open", () => { connection().hidden = true; });
    source.addEventListener("error", () => { connection().hidden = false; });
    source.addEventListener("fragment", (event) => swap(JSON.parse(event.data)));
    source.addEventListener("reload", () => { source.close(); window.location.reload(); });
    return source;
  }

  // Forms -------------------------------------------------------------------------------------
  function notice(text, failed) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("failed", Boolean(failed));
    box.hidden = false;
  }

  async function submit(event) {
    const form = event.target;
    event.preventDefault();
    const body = new URLSearchParams(new FormData(form, event.submitter));
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        body: body,
        headers: { "X-Caravan-Dashboard": "fetch", "Accept": "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (answer.ok) {
        notice(answer.message, false);
        (answer.fragments || []).forEach(swap);
      } else {
        notice(answer.message + (answer.hint ? " (" + answer.hint + ")" : ""), true);
      }
    } catch (error) {
      notice("the server did not answer: " + error, true);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function enhance(root) {
    root.querySelectorAll("form[data-enhance]").forEach((form) => {
      if (form.dataset.enhanced) return;
      form.dataset.enhanced = "1";
      form.addEventListener("submit", submit);
    });
  }

  // Durations of what is still running count up every second.
  function format(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + "ms";
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
    return Math.floor(minutes / 60) + "h" + String(minutes % 60).padStart(2, "0") + "m";
  }

  function tick() {
    const now = Date.now() / 1000;
    document.querySelectorAll("[data-since]").forEach((span) => {
      span.textContent = format(Math.max(0, now - Number(span.dataset.since)));
    });
  }

  // Logs --------------------------------------------------------------------------------------
  function follow(pre) {
    const source = new EventSource(pre.dataset.stream);
    source.addEventListener("open", () => { connection().hidden = true; });
    source.addEventListener("error", () => { connection().hidden = false; });
    source.addEventListener("log", (event) => {
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 8;
      pre.append(document.createTextNode(JSON.parse(event.data).text));
      if (atBottom) window.scrollTo(0, document.body.scrollHeight);
    });
    source.addEventListener("end", (event) => {
      source.close();
      const status = JSON.parse(event.data).status;
      const badge = document.querySelector("#log-status .badge");
      if (badge && status) {
        badge.textContent = status;
        badge.dataset.status = status;
        badge.className = "badge status-" + status.toLowerCase();
      }
      document.getElementById("log-follow").hidden = true;
      document.getElementById("log-ended").hidden = false;
      pre.dataset.ended = "true";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    tick();
    window.setInterval(tick, 1000);
    const events = document.body.dataset.events;
    if (events) connect(events);
    const log = document.querySelector("pre[data-stream]");
    if (log) follow(log);
  });
})();
