"use strict";
// The fleet console: a snapshot, then one server-sent event per changed kiosk.
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const kiosks = new Map();
const $ = (id) => document.getElementById(id);
const ACTIONS = ["identify", "mute", "rejoin", "restart", "remove", "revoke"];
const DANGER = new Set(["restart", "remove", "revoke"]);

function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}
function faulted(k) { return k.revoked || (k.fault && k.fault !== "none"); }
function label(k) {
  if (k.revoked) return "revoked";
  if (k.presence === "in-room") return k.state && k.state !== "in-room" ? k.state : "in room";
  return k.presence === "unknown" ? "not seen yet" : k.presence;
}
function visible(k) {
  if ($("f-faulted").checked && !faulted(k)) return false;
  if ($("f-offline").checked) {
    const minutes = Number($("f-minutes").value) || 0;
    if (k.presence === "in-room") return false;
    if (k.last_seen_at && Date.now() / 1000 - k.last_seen_at < minutes * 60) return false;
  }
  const q = $("f-text").value.trim().toLowerCase();
  return !q || k.identity.toLowerCase().includes(q) || k.room.toLowerCase().includes(q)
    || (k.display_name || "").toLowerCase().includes(q);
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
function card(k) {
  const classes = ["kiosk", k.presence];
  if (faulted(k)) classes.push("faulted");
  if (k.revoked) classes.push("revoked");
  const c = el("article", {class: classes.join(" "), "data-identity": k.identity,
                           "data-presence": k.presence, "data-fault": k.fault || "none",
                           "data-revoked": String(k.revoked)});
  c.append(el("h2", {}, el("span", {}, k.display_name || k.identity),
              el("span", {class: "state"}, label(k))));
  const dl = el("dl");
  const row = (name, value, cls) => dl.append(el("dt", {}, name), el("dd", cls ? {class: cls} : {}, value || "–"));
  row("identity", k.identity); row("room", k.room);
  if (faulted(k)) row("fault", k.revoked ? "revoked" : k.fault, "fault");
  row("mic", k.mic); row("camera", k.camera); row("quality", k.quality);
  row("version", k.version); row("last seen", ago(k.last_seen_at));
  row("last token", ago(k.last_token_at));
  c.append(dl);
  const actions = el("div", {class: "actions"});
  for (const a of ACTIONS) {
    const b = el("button", {type: "button", "data-action": a, class: DANGER.has(a) ? "danger" : ""}, a);
    b.addEventListener("click", () => act(k.identity, a));
    actions.append(b);
  }
  c.append(actions);
  return c;
}
function render() {
  const main = $("kiosks");
  const list = [...kiosks.values()].sort((a, b) => (a.room + a.identity).localeCompare(b.room + b.identity));
  const shown = list.filter(visible);
  main.replaceChildren(...shown.map(card));
  const bad = list.filter(faulted).length, inRoom = list.filter((k) => k.presence === "in-room").length;
  $("counts").textContent = `${list.length} kiosks, ${inRoom} in room, ${bad} faulted, ${shown.length} shown`;
}
async function act(identity, action) {
  if (DANGER.has(action) && !confirm(`${action} ${identity}?`)) return;
  $("message").textContent = `${action} ${identity}…`;
  try {
    const r = await fetch(`/api/devices/${encodeURIComponent(identity)}/${action}`, {
      method: "POST", headers: {"X-CSRF-Token": csrf}, credentials: "same-origin"});
    const body = await r.json();
    $("message").textContent = r.ok ? `${action} ${identity}: done` : `${action} ${identity}: ${body.error}`;
  } catch (e) {
    $("message").textContent = `${action} ${identity}: ${e}`;
  }
}
function connect() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "badge on"; });
  es.addEventListener("error", () => { $("live").textContent = "reconnecting…"; $("live").className = "badge"; });
  es.addEventListener("devices", (e) => {
    kiosks.clear();
    for (const k of JSON.parse(e.data)) kiosks.set(k.identity, k);
    render();
  });
  es.addEventListener("device", (e) => { const k = JSON.parse(e.data); kiosks.set(k.identity, k); render(); });
  es.addEventListener("gone", (e) => { kiosks.delete(JSON.parse(e.data).identity); render(); });
}
for (const id of ["f-faulted", "f-offline", "f-minutes", "f-text"]) $(id).addEventListener("input", render);
setInterval(render, 15000);  // "last seen" ages and the offline filter move with the clock
connect();
