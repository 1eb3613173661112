// The hub's dashboard. Event data is attacker-controlled: everything shown is set as text
// (createElement + text nodes), never as markup.
"use strict";

const MAX_ROWS = 500;
const REFRESH_MS = 5000;
const TRIGGERS_PATH = "/api/v3.1/trigger_instances";

const state = {
  apiKey: "",
  rows: new Map(), // log id -> summary
  order: [], // log ids, newest first
  selected: null,
  filters: {},
  kept: 0,
  capacity: 0,
};

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Calls the hub; resolves to {ok, status, data, message} and never throws. */
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (path.startsWith("/api/")) headers["x-api-key"] = state.apiKey;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.json !== undefined ? JSON.stringify(options.json) : options.body,
    });
  } catch (e) {
    return { ok: false, status: 0, data: null, message: "the hub did not answer (is it still running?)" };
  }
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  let message = "";
  if (!response.ok) {
    message = (data && data.error && (data.error.message || data.error)) || text || response.statusText;
    message = `${response.status}: ${typeof message === "string" ? message : JSON.stringify(message)}`;
  }
  return { ok: response.ok, status: response.status, data, message };
}

function show(node, text, bad) {
  node.textContent = text;
  node.hidden = !text;
  node.classList.toggle("bad", Boolean(bad));
}

function time(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso || "") : d.toLocaleTimeString([], { hour12: false });
}

function badge(status) {
  return el("span", { class: `badge ${status}` }, String(status || "").replace("_", " "));
}

// ---- events list -------------------------------------------------------------------------

function filterQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
  return params.toString();
}

async function loadEvents() {
  const query = filterQuery();
  const r = await api(`/hub/events${query ? "?" + query : ""}`);
  if (!r.ok) {
    show($("filter-error"), r.message, true);
    return;
  }
  show($("filter-error"), "");
  state.rows.clear();
  state.order = [];
  for (const item of r.data.items) {
    state.rows.set(item.id, item);
    state.order.push(item.id);
  }
  state.kept = r.data.kept;
  state.capacity = r.data.capacity;
  renderCounts();
  renderRows();
}

function renderCounts() {
  const n = state.kept;
  $("counts").textContent = `${n} event${n === 1 ? "" : "s"} in the log (keeps ${state.capacity})`;
}

function rowFor(s) {
  const wh = s.webhooks || { delivered: 0, failed: 0, pending: 0 };
  const all = wh.delivered + wh.failed + wh.pending;
  const sent = [`⚡${s.realtime}`];
  if (all) sent.push(`✉ ${wh.delivered}/${all}`);
  if (s.sends > 1) sent.push(`×${s.sends}`);
  const tr = el("tr", { class: "event-row", "data-id": s.id, "data-status": s.status, title: s.event_id || s.id },
    el("td", {}, time(s.last_sent_at)),
    el("td", { class: "mono" }, s.trigger_slug || s.event_type),
    el("td", {}, s.user_id),
    el("td", {}, badge(s.status)),
    el("td", { class: "sent" }, sent.join("  ")));
  if (s.id === state.selected) tr.classList.add("selected");
  tr.addEventListener("click", () => select(s.id));
  return tr;
}

function renderRows() {
  const body = $("event-rows");
  body.replaceChildren(...state.order.map((id) => rowFor(state.rows.get(id))));
  $("events-empty").hidden = state.order.length > 0;
}

function hasFilters() {
  return Object.values(state.filters).some(Boolean);
}

let refetchTimer = null;
function refetchSoon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(loadEvents, 250);
}

/** A summary from the live feed: update its row in place, or add it on top. */
function upsert(summary) {
  if (hasFilters()) {
    refetchSoon();
  } else {
    const known = state.rows.has(summary.id);
    state.rows.set(summary.id, summary);
    const row = rowFor(summary);
    const old = $("event-rows").querySelector(`tr[data-id="${CSS.escape(summary.id)}"]`);
    if (known && old) {
      old.replaceWith(row);
    } else {
      state.order.unshift(summary.id);
      state.kept = Math.min(state.kept + 1, state.capacity);
      renderCounts();
      $("event-rows").prepend(row);
      row.classList.add("flash");
      while (state.order.length > MAX_ROWS) {
        const gone = state.order.pop();
        state.rows.delete(gone);
        const last = $("event-rows").lastElementChild;
        if (last) last.remove();
      }
      $("events-empty").hidden = true;
    }
  }
  if (summary.id === state.selected) detailSoon();
}

// ---- event detail -------------------------------------------------------------------------

let detailTimer = null;
function detailSoon() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => loadDetail(state.selected), 100);
}

function select(id) {
  state.selected = id;
  for (const tr of $("event-rows").children) tr.classList.toggle("selected", tr.dataset.id === id);
  show($("detail-message"), "");
  loadDetail(id);
}

async function loadDetail(id) {
  if (!id) return;
  const r = await api(`/hub/events/${encodeURIComponent(id)}`);
  if (id !== state.selected) return;
  $("detail-empty").hidden = r.ok;
  $("detail").hidden = !r.ok;
  if (!r.ok) {
    $("detail-empty").textContent = r.message;
    return;
  }
  renderDetail(r.data);
}

const MAX_ENVELOPE_CHARS = 200000;

function renderDetail(e) {
  $("detail").dataset.id = e.id;
  $("detail-slug").textContent = e.trigger_slug || e.event_type;
  $("detail-status").replaceWith(Object.assign(badge(e.status), { id: "detail-status" }));
  const meta = [
    ["event id", e.event_id || "(none)"],
    ["type", e.event_type],
    ["toolkit", e.toolkit],
    ["user", e.user_id],
    ["received", e.received_at],
    ["sends", String(e.sends_total)],
  ];
  if (e.id !== e.event_id) meta.unshift(["log id", e.id]);
  if (e.resent_from) meta.push(["resent from", e.resent_from]);
  meta.push(["size", `${e.envelope_bytes} bytes`]);
  $("detail-meta").replaceChildren(...meta.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("resend-same").disabled = !e.envelope;
  $("resend-fresh").disabled = !e.envelope || !e.event_id;

  const rows = [];
  const note = (send, text) => el("tr", { class: "delivery", "data-send": send.n, "data-kind": "none" },
    el("td", { colspan: 5, class: "muted" }, text));
  for (const send of e.sends.slice().reverse()) {
    const kind = send.n === 1 ? "first send" : "sent again, same id";
    rows.push(el("tr", { class: "send-head", "data-send": send.n },
      el("td", { colspan: 5 }, el("strong", {}, `#${send.n}`), ` ${time(send.at)} · ${kind} · `, badge(send.status))));
    for (const r of send.realtime) {
      rows.push(el("tr", { class: "delivery", "data-send": send.n, "data-kind": "realtime" },
        el("td", { class: "mono", title: `listener: socket ${r.socket_id}, connection ${r.connection}` }, `⚡ ${r.socket_id}`),
        el("td", {}, "–"),
        el("td", { class: "ok" }, "sent"),
        el("td", {}, ""),
        el("td", { class: "answer" }, "")));
    }
    if (send.realtime_total > send.realtime.length) {
      rows.push(note(send, `and ${send.realtime_total - send.realtime.length} more listeners`));
    }
    for (const a of send.webhooks) {
      const cls = a.outcome === "delivered" ? "ok" : a.outcome === "failed" || a.outcome === "dropped" ? "bad" : "wait";
      const result = a.status ? `${a.status} ${a.outcome}` : a.error ? `${a.outcome}: ${a.error}` : a.outcome;
      rows.push(el("tr", { class: "delivery", "data-send": send.n, "data-kind": "webhook", "data-outcome": a.outcome },
        el("td", { class: "mono", title: `webhook: ${a.webhook_url}\n${a.subscription_id} · webhook-id ${a.webhook_id}` }, `✉ ${a.webhook_url}`),
        el("td", {}, a.attempt ? String(a.attempt) : "–"),
        el("td", { class: cls, title: result }, result),
        el("td", {}, a.latency_ms === null || a.latency_ms === undefined ? "" : String(a.latency_ms)),
        el("td", { class: "answer", title: a.answer || "" }, a.answer || "")));
    }
    if (!send.realtime_total && !send.webhooks.length) {
      rows.push(note(send, "no listener and no webhook subscription received it"));
    }
    if (send.attempts_dropped) rows.push(note(send, `${send.attempts_dropped} attempt records not kept`));
  }
  if (e.sends_total > e.sends.length) {
    rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted" }, `${e.sends_total - e.sends.length} older sends not kept`)));
  }
  $("deliveries").replaceChildren(...rows);

  let text = e.envelope === null ? "(the envelope was too large to keep)" : JSON.stringify(e.envelope, null, 2);
  if (text.length > MAX_ENVELOPE_CHARS) text = text.slice(0, MAX_ENVELOPE_CHARS) + `\n… (${text.length} characters; cut)`;
  $("envelope").textContent = text;
}

async function resend(fresh) {
  const id = state.selected;
  if (!id) return;
  const buttons = [$("resend-same"), $("resend-fresh")];
  buttons.forEach((b) => { b.disabled = true; });
  const r = await api(`/hub/events/${encodeURIComponent(id)}/resend`, { method: "POST", json: { fresh } });
  buttons.forEach((b) => { b.disabled = false; });
  if (!r.ok) {
    show($("detail-message"), `Resend failed: ${r.message}`, true);
    return;
  }
  const p = r.data.published;
  const to = `${p.subscribers} listener${p.subscribers === 1 ? "" : "s"} and ${p.webhooks} webhook subscription${p.webhooks === 1 ? "" : "s"}`;
  if (fresh) {
    state.selected = r.data.id;
    await loadDetail(r.data.id);
    show($("detail-message"), `Sent a copy with the fresh id ${p.id} to ${to} (resent from ${id}).`);
  } else {
    await loadDetail(id);
    show($("detail-message"), `Resent ${id} with the same id to ${to}: listeners drop it as a duplicate.`);
  }
}

// ---- side panels --------------------------------------------------------------------------

async function loadListeners() {
  const r = await api("/hub/connections");
  const list = $("listeners");
  if (!r.ok) {
    list.replaceChildren(el("li", { class: "error" }, r.message));
    return;
  }
  $("listeners-count").textContent = `(${r.data.items.length})`;
  list.replaceChildren(...r.data.items.map((c) => el("li", { class: "listener", "data-socket": c.socket_id },
    el("div", { class: "mono" }, c.socket_id),
    el("div", { class: "sub" }, `since ${time(c.connected_at)} · ${c.channels.length ? c.channels.join(", ") : "no channel yet"}`),
    c.user_agent ? el("div", { class: "sub" }, c.user_agent) : null)));
  if (!r.data.items.length) list.replaceChildren(el("li", { class: "muted" }, "No listener connected."));
}

async function loadSubscriptions() {
  const r = await api("/hub/subscriptions");
  const list = $("subscriptions");
  if (!r.ok) {
    list.replaceChildren(el("li", { class: "error" }, r.message));
    return;
  }
  list.replaceChildren(...r.data.items.map((s) => el("li", { class: "subscription", "data-id": s.id },
    el("div", { class: "mono" }, s.webhook_url),
    el("div", { class: "sub" }, s.id),
    el("div", { class: "sub" }, `secret ${s.secret_prefix}`),
    el("div", { class: "sub" }, s.enabled_events.join(", ")))));
  if (!r.data.items.length) list.replaceChildren(el("li", { class: "muted" }, "No webhook subscription."));
}

function triggerEnabled(t) {
  if (t.disabled_at || t.disabledAt) return false;
  // `status` or `state` may be a word (`state` may also be an object: ignored then).
  const word = [t.status, t.state].find((v) => typeof v === "string") || "";
  return !["disabled", "disable", "inactive"].includes(word.toLowerCase());
}

async function loadTriggers() {
  const r = await api(`${TRIGGERS_PATH}/active?show_disabled=true`);
  const list = $("triggers");
  const note = $("triggers-message");
  if (r.status === 404 || r.status === 405) {
    list.replaceChildren();
    show(note, `This hub has no trigger instances API (GET ${TRIGGERS_PATH}/active answered ${r.status}).`);
    return;
  }
  if (!r.ok) {
    show(note, `Trigger instances could not be listed: ${r.message}`, true);
    return;
  }
  const items = (r.data && (r.data.items || r.data.data || r.data.triggers)) || [];
  show(note, items.length ? "" : "No trigger instance.");
  list.replaceChildren(...items.map(triggerItem));
}

function triggerItem(t) {
  const id = String(t.id || t.trigger_id || t.nano_id || "");
  const slug = String(t.trigger_name || t.trigger_slug || t.slug || "");
  const enabled = triggerEnabled(t);
  const input = el("input", { type: "checkbox", class: "trigger-switch", "data-id": id, role: "switch", "aria-label": `enable ${slug} ${id}` });
  input.checked = enabled;
  input.addEventListener("change", () => toggleTrigger(input, id));
  return el("li", { class: "trigger", "data-id": id, "data-enabled": String(enabled) },
    el("div", { class: "what" },
      el("div", { class: "mono" }, slug),
      el("div", { class: "sub" }, `${id}${t.user_id ? " · " + t.user_id : ""}`)),
    el("label", { class: "switch", title: enabled ? "enabled: click to disable" : "disabled: click to enable" },
      input, el("span", { class: "track" })));
}

async function toggleTrigger(input, id) {
  const status = input.checked ? "enable" : "disable";
  input.disabled = true;
  const r = await api(`${TRIGGERS_PATH}/manage/${encodeURIComponent(id)}`, { method: "PATCH", json: { status } });
  input.disabled = false;
  if (!r.ok) {
    input.checked = !input.checked;
    show($("triggers-message"), `Could not ${status} ${id}: ${r.message}`, true);
    return;
  }
  show($("triggers-message"), "");
  loadTriggers();
}

// ---- forms ----------------------------------------------------------------------------------

function setupFilters() {
  const form = $("filters");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    state.filters = {};
    for (const [k, v] of data.entries()) state.filters[k] = String(v).trim();
    loadEvents();
  });
  $("clear-filters").addEventListener("click", () => {
    form.reset();
    state.filters = {};
    loadEvents();
  });
}

function setupSendForm() {
  const form = $("send-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $("send-message");
    const data = new FormData(form);
    const slug = String(data.get("trigger_slug") || "").trim();
    const user = String(data.get("user_id") || "").trim();
    const raw = String(data.get("payload") || "").trim();
    const payloadField = form.elements.payload;
    payloadField.removeAttribute("aria-invalid");
    if (!slug) {
      show(msg, "Give a trigger slug, such as SLACK_RECEIVE_MESSAGE.", true);
      return;
    }
    let payload = {};
    if (raw) {
      try {
        payload = JSON.parse(raw);
      } catch (e) {
        payloadField.setAttribute("aria-invalid", "true");
        show(msg, `The payload is not valid JSON: ${e.message}`, true);
        return;
      }
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        payloadField.setAttribute("aria-invalid", "true");
        show(msg, "The payload must be a JSON object, such as {\"text\": \"hi\"}.", true);
        return;
      }
    }
    const body = { trigger_slug: slug, payload };
    if (user) body.user_id = user;
    const r = await api("/hub/events", { method: "POST", json: body });
    if (!r.ok) {
      show(msg, `Not sent: ${r.message}`, true);
      return;
    }
    show(msg, `Sent ${r.data.id} to ${r.data.subscribers} listener(s) and ${r.data.webhooks} webhook subscription(s).`);
  });
}

// ---- live feed ------------------------------------------------------------------------------

function connectFeed() {
  const live = $("live");
  const source = new EventSource("/hub/stream");
  source.addEventListener("ready", () => {
    live.textContent = "live";
    live.className = "live on";
    loadEvents();
    loadListeners();
    if (state.selected) detailSoon();
  });
  source.addEventListener("event", (ev) => {
    try { upsert(JSON.parse(ev.data)); } catch (e) { /* a malformed item is skipped */ }
  });
  let listenersTimer = null;
  source.addEventListener("connections", () => {
    clearTimeout(listenersTimer);
    listenersTimer = setTimeout(loadListeners, 150);
  });
  source.addEventListener("lagged", () => {
    live.textContent = "catching up…";
    live.className = "live off";
  });
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
}

async function start() {
  const config = await api("/hub/ui/config");
  if (config.ok) {
    state.apiKey = config.data.api_key;
    $("project").textContent = `${config.data.project_id} · ${config.data.channel} · v${config.data.version}`;
  } else {
    $("project").textContent = config.message;
  }
  setupFilters();
  setupSendForm();
  $("resend-same").addEventListener("click", () => resend(false));
  $("resend-fresh").addEventListener("click", () => resend(true));
  connectFeed();
  loadSubscriptions();
  loadTriggers();
  setInterval(() => {
    if (document.hidden) return;
    loadSubscriptions();
    loadTriggers();
  }, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
