// interfaced, the lab's view: every page's behaviour, no framework. Each page is static HTML
// (built into the daemon) that reads the daemon's JSON: /health, /api/stats, /api/messages,
// /api/help, /api/qc/series. Rendering goes through el(), which sets text, never HTML, so a
// value from an analyser can never become markup.
"use strict";

function el(tag, attrs, ...children) {
  const ns = ["svg", "line", "circle", "text", "rect", "polyline", "g", "title"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) { const err = new Error(url + ": HTTP " + r.status); err.status = r.status; throw err; }
  return r.json();
}

function params(form) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form).entries()) if (v !== "") p.append(k, v);
  return p;
}

// The address bar follows the search, so a view can be bookmarked and shared; never fatal (a page
// opened from a file cannot change its path).
function setUrl(path, p) {
  try { history.replaceState(null, "", path + (p.toString() ? "?" + p : "")); } catch (e) { /* keep the page working */ }
}

function fillForm(form) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of q.entries()) {
    const f = form.elements[k];
    if (!f) continue;
    if (f.type === "checkbox") f.checked = v === "1" || v === "true"; else f.value = v;
  }
}

// --- the help panel of every page (REQ-HELP-001) ---
async function helpPanel(page) {
  const ul = document.getElementById("help-items");
  if (!ul) return;
  try {
    const j = await getJson("/api/help?page=" + encodeURIComponent(page));
    // The page's own items (no code) first, then the codes a person may meet on it.
    j.items.sort((a, b) => (a.code ? 1 : 0) - (b.code ? 1 : 0) || a.order - b.order);
    ul.replaceChildren(...j.items.slice(0, 12).map(helpItem));
    if (j.items.length > 12) ul.appendChild(el("li", {}, el("a", { href: "/help" }, "More help…")));
  } catch (e) { ul.replaceChildren(el("li", { class: "muted" }, "help not available")); }
}

function helpItem(it) {
  const li = el("li", { class: "help-item", "data-id": it.id });
  li.appendChild(el("strong", {}, it.code ? el("span", { class: "code" }, it.code) : null, it.code ? " " : "", it.title));
  li.appendChild(el("div", {}, it.description));
  if ((it.causes || []).length) li.appendChild(el("div", { class: "muted" }, "Likely causes: " + it.causes.join("; ")));
  if ((it.actions || []).length) li.appendChild(el("div", {}, "What to do: " + it.actions.join("; ")));
  if (it.video_url) li.appendChild(el("a", { href: it.video_url, rel: "noopener" }, "Video"));
  return li;
}

// --- / ---
async function dashboard() {
  const tbody = document.querySelector("#devices tbody");
  async function refresh() {
    try {
      const [h, counts, links] = await Promise.all([
        getJson("/health"),
        getJson("/api/stats?by=device&event=device_result&event=device_rerun_requested&event=device_qc_rejected"),
        getJson("/api/stats?event=device_link_error"),
      ]);
      document.getElementById("tz").textContent = counts.timezone;
      const last = counts.buckets.length - 1;  // the range ends today (lab-local)
      const today = {};
      for (const r of counts.rows) (today[r.dimension_a] ||= {})[r.event_type] = r.values[last];
      for (const r of links.rows) if (r.dimension_b === "nak") (today[r.dimension_a] ||= {}).nak = r.values[last];
      const alarmsOf = {};
      for (const a of h.alarm_details || []) (alarmsOf[a.subject] ||= []).push(a.code);
      tbody.replaceChildren(...h.devices.map(d => {
        const t = today[d.id] || {};
        return el("tr", { id: "device-" + d.id, "data-device": d.id },
          el("td", { class: "device-name" }, el("strong", {}, d.id), el("div", { class: "muted" }, d.protocol + " · " + d.link)),
          el("td", { class: "state-" + d.state }, d.state, d.down_reason ? el("div", { class: "muted" }, d.down_reason) : null),
          el("td", { class: "last-message" }, d.last_message_at || "never"),
          el("td", { class: "num results-today" }, t.device_result || 0),
          el("td", { class: "num reruns-today" }, t.device_rerun_requested || 0),
          el("td", { class: "num qc-rejects-today" }, t.device_qc_rejected || 0),
          el("td", { class: "num naks-today" }, t.nak || 0),
          el("td", { class: "alarm" }, (alarmsOf[d.id] || []).join(" ")));
      }));
      const ob = h.outbox;
      document.getElementById("outbox").textContent = ob.depth + " waiting" + (ob.dead !== undefined ? ", " + ob.dead + " dead letters" : "") +
        (ob.accepting ? "" : " — FULL: analysers are refused");
      document.getElementById("alarms").replaceChildren(...(h.alarms.length ? h.alarms.map(a => el("li", { class: "alarm" }, a)) : [el("li", { class: "muted" }, "none")]));
      document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      document.body.dataset.loaded = "1";
    } catch (e) {
      document.getElementById("updated").textContent = "Cannot reach the daemon (" + e.message + ").";
    }
  }
  await refresh();
  setInterval(refresh, 5000);
}

// --- /messages ---
async function messages() {
  const form = document.getElementById("filters");
  fillForm(form);
  const mode = document.getElementById("mode");
  async function search() {
    const box = document.getElementById("messages");
    const p = params(form);
    setUrl("/messages", p);
    box.replaceChildren(el("p", { class: "muted" }, "Searching…"));
    try {
      const j = await getJson("/api/messages?" + p);
      admin = j.admin ? { csrf: j.csrf } : null;
      adminMode(mode, "Read-only: retry and set aside with `interfaced outbox retry ID` / `interfaced outbox set-aside ID` (or set health.admin_token_file).");
      if (!j.messages.length) { box.replaceChildren(el("p", { class: "muted", id: "no-messages" }, "No message matches.")); document.body.dataset.loaded = "1"; return; }
      box.replaceChildren(...j.messages.map(messageCard));
      if (j.messages.length >= j.limit) box.appendChild(el("p", { class: "muted" }, "Only the newest " + j.limit + " are shown: narrow the search."));
    } catch (e) { box.replaceChildren(el("p", { class: "alarm" }, "Search failed: " + e.message)); }
    document.body.dataset.loaded = "1";
  }
  form.addEventListener("submit", ev => { ev.preventDefault(); search(); });
  searchAgain = search;
  await search();
}

let admin = null, searchAgain = null;

// The admin token and name inputs of a page whose actions are enabled (admin set from the page's
// GET answer), or why it is read-only.
function adminMode(mode, readOnly) {
  if (!admin) { mode.textContent = readOnly; return; }
  if (document.getElementById("admin-token")) return;
  mode.replaceChildren("Actions are enabled: they need the admin token (health.admin_token_file) and are audited. ",
    el("label", {}, "Admin token ", el("input", { id: "admin-token", type: "password", autocomplete: "off" })),
    " ", el("label", {}, "Your name ", el("input", { id: "admin-by", autocomplete: "name" })));
}

// Token and name entered; asked before any other question.
function adminReady() {
  const ok = ((document.getElementById("admin-token") || {}).value || "") && ((document.getElementById("admin-by") || {}).value || "");
  if (!ok) alert("Enter the admin token and your name first.");
  return !!ok;
}

// A confirmed action: POST with the admin token and the page's CSRF token; null when the person
// has not entered token and name, else the answer {ok, j}.
async function adminPost(url, body) {
  if (!adminReady()) return null;
  const token = document.getElementById("admin-token").value, by = document.getElementById("admin-by").value;
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token, "X-CSRF-Token": admin.csrf },
    body: JSON.stringify(Object.assign({ by }, body)) });
  const j = await r.json().catch(() => ({}));
  return { ok: r.ok, j: r.ok ? j : { error: j.error || "HTTP " + r.status } };
}

// Retry / set aside: confirmed, sent as POST with the admin token and the page's CSRF token.
async function act(what, m) {
  if (!adminReady()) return;
  const reason = prompt((what === "retry" ? "Queue message " + m.id + " again" : "Set message " + m.id + " aside") + ": reason?") || "";
  if (what === "set-aside" && !reason) return;
  if (!confirm((what === "retry" ? "Retry " : "Set aside ") + m.kind + " message " + m.id + "?")) return;
  const a = await adminPost("/api/messages/" + what, { id: m.id, reason });
  if (!a) return;
  alert(a.ok ? "Done." : "Refused: " + a.j.error);
  if (searchAgain) searchAgain();
}

function messageCard(m) {
  const rows = [];
  const b = m.body || {};
  for (const list of ["results", "values"])
    for (const r of (Array.isArray(b[list]) ? b[list] : []))
      rows.push(el("tr", { class: "result" }, el("td", {}, r.sample_id || ""), el("td", {}, r.device || b.device_id || ""), el("td", { class: "parameter" }, r.parameter || r.machine_name || ""),
        el("td", { class: "num value" }, r.value === undefined ? "" : String(r.value)), el("td", {}, r.unit || ""), el("td", {}, r.observed_at || "")));
  const card = el("div", { class: "card message", "data-id": m.id, "data-state": m.state },
    el("div", {}, el("strong", {}, m.kind), " · ", el("span", { class: "state-" + m.state }, m.state), " · ", m.created_at,
      " · ", m.attempts + " attempt" + (m.attempts === 1 ? "" : "s"), m.last_status ? " · last answer HTTP " + m.last_status : ""),
    el("div", { class: "muted" }, "id " + m.id + " · key " + m.ordering_key));
  if (rows.length)
    card.appendChild(el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Sample", "Device", "Parameter", "Value", "Unit", "Observed"].map(h => el("th", {}, h)))), el("tbody", {}, rows))));
  if (m.state === "dead" || m.last_response)
    card.appendChild(el("div", { class: m.state === "dead" ? "alarm dead-answer" : "muted" }, (m.state === "dead" ? "Dead letter; the backend answered: " : "Last answer: ") + (m.last_response || "")));
  if (m.set_aside_by) card.appendChild(el("div", { class: "muted" }, "Set aside by " + m.set_aside_by + ": " + m.set_aside_reason));
  for (const r of m.resends || []) card.appendChild(el("div", { class: "muted" }, "Sent again " + r.received_at + ": " + r.parameter + " = " + r.value));
  card.appendChild(el("details", {}, el("summary", {}, "Raw form"), el("pre", { class: "raw" }, m.raw)));
  if (admin && (m.state === "dead" || m.state === "pending" || m.state === "set-aside")) {
    const retry = el("button", { type: "button", class: "retry" }, "Retry");
    retry.addEventListener("click", () => act("retry", m));
    const aside = el("button", { type: "button", class: "set-aside" }, "Set aside");
    aside.addEventListener("click", () => act("set-aside", m));
    card.appendChild(el("div", { class: "actions" }, retry, " ", m.state === "set-aside" ? null : aside));
  }
  return card;
}

// --- /qc: Levey-Jennings (qc.md) ---
async function qc() {
  const form = document.getElementById("filters");
  fillForm(form);
  const mode = document.getElementById("mode");
  async function show() {
    const box = document.getElementById("charts");
    const p = params(form);
    setUrl("/qc", p);
    try {
      const j = await getJson("/api/qc/series?" + p);
      admin = j.admin ? { csrf: j.csrf, codes: j.resolution_codes || [] } : null;
      if (mode) adminMode(mode, "Read-only: resolve a control with `interfaced qc resolve RESULT_ID --code CODE --by NAME --reason TEXT` (or set health.admin_token_file).");
      if (!j.series.length) box.replaceChildren(el("p", { class: "muted" }, "No control series."));
      else box.replaceChildren(...j.series.map(ljChart));
    } catch (e) {
      box.replaceChildren(el("p", { class: "notice", id: "qc-unavailable" }, e.status === 404 ? "QC is not available in this daemon." : "QC could not be read: " + e.message));
    }
    document.body.dataset.loaded = "1";
  }
  form.addEventListener("submit", ev => { ev.preventDefault(); show(); });
  searchAgain = show;
  await show();
}

// Resolve / approve / undo one control result (qc.md "Resolutions"): confirmed, audited by the
// daemon (who, when, why; GET /api/qc/history), POSTed with the admin token and the CSRF token.
async function qcAct(what, p) {
  if (!adminReady()) return;
  let url, body, question;
  if (what === "resolve") {
    const codes = admin.codes.map(c => c.code);
    if (!codes.length) { alert("No resolution codes are configured (qc.resolution_codes)."); return; }
    const code = codes.length === 1 ? codes[0] : (prompt("Resolution code (" + codes.join(", ") + ")?", codes[0]) || "").trim();
    const c = admin.codes.find(x => x.code === code);
    if (!c) { if (code) alert("Unknown code " + code + "."); return; }
    const reason = prompt("Resolve the control of " + p.observed_at + " (" + p.value + ") with " + code + ": reason?") || "";
    if (!reason) return;
    url = "/api/qc/resolve"; body = { result_id: p.result_id, code, reason, propose: !!c.two_step };
    question = (c.two_step ? "Propose " : "Resolve ") + "the control of " + p.observed_at + " with " + code + "?";
  } else if (what === "approve") {
    url = "/api/qc/approve"; body = { proposal_id: p.resolution.id };
    question = "Approve " + p.resolution.code + " proposed by " + p.resolution.by + "?";
  } else {
    const reason = prompt("Undo " + p.resolution.code + ": reason?") || "";
    if (!reason) return;
    url = "/api/qc/undo"; body = { resolution_id: p.resolution.id, reason };
    question = "Undo " + p.resolution.code + " of the control of " + p.observed_at + "?";
  }
  if (!confirm(question)) return;
  const a = await adminPost(url, body);
  if (!a) return;
  const msg = document.getElementById("qc-message");
  if (msg) msg.textContent = a.ok ? a.j.message || "Done." : "Refused: " + a.j.error;
  if (searchAgain) await searchAgain();
}

// The controls a person may act on under a chart: rejected and warned ones to resolve, proposals
// to approve, resolutions to undo. Only when the page's actions are enabled.
function qcActions(s) {
  const rows = [];
  for (const p of s.points) {
    const r = p.resolution;
    let button = null;
    if (!r && (p.outcome === "reject" || p.outcome === "warning")) button = ["resolve", "Resolve…"];
    else if (r && r.state === "proposed") button = ["approve", "Approve…"];
    else if (r && r.state === "active") button = ["undo", "Undo…"];
    if (!button) continue;
    const b = el("button", { type: "button", class: "qc-" + button[0], "data-result-id": p.result_id }, button[1]);
    b.addEventListener("click", () => qcAct(button[0], p));
    rows.push(el("tr", { class: "qc-point", "data-result-id": p.result_id }, el("td", {}, p.observed_at), el("td", { class: "num" }, String(p.value)),
      el("td", {}, p.outcome + ((p.rules || []).length ? " " + p.rules.join(",") : "")), el("td", {}, r ? r.code + " (" + r.state + ", " + r.by + ")" : ""), el("td", {}, b)));
  }
  if (!rows.length) return null;
  return el("table", { class: "qc-actions" }, el("thead", {}, el("tr", {}, ["Observed", "Value", "Outcome", "Resolution", ""].map(h => el("th", {}, h)))), el("tbody", {}, rows));
}

function ljChart(s) {
  const W = 800, H = 260, L = 56, R = 12, T = 14, B = 28;
  const sd = s.sd > 0 ? s.sd : 1;
  const ymin = s.mean - 4 * sd, ymax = s.mean + 4 * sd;
  const y = v => T + (H - T - B) * (1 - (Math.min(Math.max(v, ymin), ymax) - ymin) / (ymax - ymin));
  const n = s.points.length;
  const x = i => L + (n <= 1 ? (W - L - R) / 2 : (W - L - R) * i / (n - 1));
  const svg = el("svg", { class: "chart lj", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${s.device} ${s.parameter} level ${s.level}`, "data-points": n });
  for (const k of [-3, -2, -1, 0, 1, 2, 3]) {
    const v = s.mean + k * sd;
    svg.appendChild(el("line", { class: k === 0 ? "mean-line" : "sd-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.appendChild(el("text", { x: 4, y: y(v) + 4 }, (k === 0 ? "mean " : (k > 0 ? "+" : "") + k + " SD ") + v.toFixed(2)));
  }
  if (n > 1) svg.appendChild(el("polyline", { points: s.points.map((p, i) => `${x(i)},${y(p.value)}`).join(" "), fill: "none", stroke: "#9aa3b2" }));
  s.points.forEach((p, i) => {
    const resolved = p.resolution !== null && p.resolution !== undefined;
    const c = el("circle", { class: "pt " + (resolved ? "pt-resolved" : "pt-" + p.outcome), cx: x(i), cy: y(p.value), r: 4.5, "data-outcome": p.outcome },
      el("title", {}, `${p.observed_at}: ${p.value} (z ${Number(p.z).toFixed(2)}) ${p.outcome}${(p.rules || []).length ? " " + p.rules.join(",") : ""}${resolved ? " resolved " + p.resolution.code : ""}`));
    svg.appendChild(c);
    if (p.outcome === "reject" && (p.rules || []).length)
      svg.appendChild(el("text", { class: "rule-label", x: x(i) + 6, y: y(p.value) - 6 }, p.rules.join(",")));
    if (resolved) svg.appendChild(el("text", { x: x(i) + 6, y: y(p.value) + 14 }, p.resolution.code));
  });
  return el("div", { class: "card series" }, el("h2", {}, `${s.device} · ${s.parameter} · ${s.material} lot ${s.lot} level ${s.level}`),
    el("p", { class: "muted" }, `mean ${s.mean}, SD ${s.sd}, ${n} points`), svg, admin ? qcActions(s) : null);
}

// --- /stats ---
async function stats() {
  const form = document.getElementById("filters");
  fillForm(form);
  async function show() {
    const p = params(form);
    setUrl("/stats", p);
    const csv = new URLSearchParams(p); csv.set("format", "csv");
    document.getElementById("csv").href = "/api/stats?" + csv;
    try {
      const j = await getJson("/api/stats?" + p);
      if (!form.elements.from.value) form.elements.from.value = j.from;
      if (!form.elements.to.value) form.elements.to.value = j.to;
      document.getElementById("summary").textContent = `${j.rows.length} rows × ${j.buckets.length} buckets (${j.granularity}, ${j.timezone}), ${j.from} to ${j.to}`;
      const grid = document.getElementById("grid");
      grid.tHead.replaceChildren(el("tr", {}, el("th", {}, "Event"), el("th", {}, "Device"), el("th", {}, "Parameter / kind"), j.buckets.map(b => el("th", { class: "num bucket" }, b))));
      grid.tBodies[0].replaceChildren(...j.rows.map(r => el("tr", { class: "row" }, el("td", {}, r.event_type), el("td", {}, r.dimension_a), el("td", {}, r.dimension_b === null ? "—" : r.dimension_b),
        r.values.map(v => el("td", { class: "num cell" }, v)))));
      const totals = j.buckets.map((_, i) => j.rows.reduce((s, r) => s + r.values[i], 0));
      const chart = document.getElementById("chart");
      const max = Math.max(1, ...totals), W = 800, H = 200, B = 20, n = totals.length, bw = (W - 20) / Math.max(n, 1);
      chart.replaceChildren(...totals.map((t, i) => el("rect", { class: "bar", x: 10 + i * bw + 1, width: Math.max(bw - 2, 1), y: H - B - (H - B - 10) * t / max, height: (H - B - 10) * t / max },
        el("title", {}, j.buckets[i] + ": " + t))),
        el("text", { x: 10, y: H - 4 }, j.buckets[0] || ""), el("text", { x: W - 80, y: H - 4 }, j.buckets[n - 1] || ""));
    } catch (e) { document.getElementById("summary").textContent = "Cannot read the summary: " + e.message; }
    document.body.dataset.loaded = "1";
  }
  form.addEventListener("submit", ev => { ev.preventDefault(); show(); });
  await show();
}

// --- /help ---
async function help() {
  const form = document.getElementById("filters");
  fillForm(form);
  async function search() {
    const p = params(form);
    setUrl("/help", p);
    const j = await getJson("/api/help?" + p);
    document.getElementById("count").textContent = j.items.length + " item" + (j.items.length === 1 ? "" : "s");
    document.getElementById("help-results").replaceChildren(...j.items.map(helpItem));
    document.body.dataset.loaded = "1";
  }
  form.addEventListener("submit", ev => { ev.preventDefault(); search(); });
  await search();
}

const pages = { dashboard, messages, qc, stats, help };
const page = document.body.dataset.page;
helpPanel(page);
if (pages[page]) pages[page]();
