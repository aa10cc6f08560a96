"use strict";
// facestream web app: four tabs that talk to /api/ (no build step, no framework). Text from the server goes
// into the page with textContent only.

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)fs_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function api(path, opts = {}) {
  const init = {method: opts.method || "GET", credentials: "same-origin", headers: {}};
  if (init.method !== "GET") init.headers["X-Facestream-CSRF"] = csrf();
  if (opts.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  } else if (opts.form) {
    init.body = opts.form;
  }
  const r = await fetch(path, init);
  if (r.status === 401 && !opts.noRedirect) { location.href = "/login"; throw new Error("log in"); }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

function notice(text, isError) {
  const n = $("#notice");
  n.textContent = text;
  n.className = "notice" + (isError ? " error" : "");
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => n.classList.add("hidden"), 6000);
}

function when(ns) {
  if (!ns) return "-";
  return new Date(ns / 1e6).toLocaleString();
}

function thumb(url, alt) {
  return url ? el("img", {src: url, alt: alt || "", class: "thumb", loading: "lazy"}) : el("div", {class: "thumb none"}, "no crop");
}

// -- tabs ------------------------------------------------------------------------------------------------

const loaders = {};
let current = null;
let timer = null;

function show(tab) {
  if (!loaders[tab]) tab = "live";
  current = tab;
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("hidden", s.id !== "tab-" + tab);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  clearInterval(timer);
  const load = () => loaders[tab]().catch((e) => notice(e.message, true));
  load();
  // the library is re-read after each action, not on a timer: a refresh would wipe a name being typed
  if (tab !== "library") timer = setInterval(load, tab === "live" ? 1000 : 3000);
}

window.addEventListener("hashchange", () => show(location.hash.slice(1)));

// -- live ------------------------------------------------------------------------------------------------

const tiles = {};

function fmt(v, digits, unit) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits) + (unit || "");
}

loaders.live = async () => {
  const data = await api("/api/live");
  const box = $("#tiles");
  for (const cam of data.cameras) {
    let t = tiles[cam.camera];
    if (!t) {
      const img = el("img", {class: "live", alt: `live view of ${cam.camera}`, src: cam.url, "data-camera": cam.camera});
      const stats = el("div", {class: "stats"});
      const faces = el("div", {class: "faces"});
      t = tiles[cam.camera] = {img, stats, faces, node: el("figure", {class: "tile", "data-camera": cam.camera},
        img, el("figcaption", {}, el("strong", {}, cam.camera), stats, faces))};
      box.append(t.node);
    }
    t.node.classList.toggle("stale", !cam.live);
    t.stats.textContent = cam.frames
      ? `${fmt(cam.fps, 1, " fps")} · latency ${fmt(cam.latency_ms, 0, " ms")} · dropped ${cam.dropped ?? "-"} · ` +
        (cam.live ? "live" : `no frame for ${fmt(cam.age_s, 0, " s")}`)
      : "waiting for frames";
    t.faces.textContent = (cam.faces || []).map((f) => `#${f.track ?? "?"} ${f.identity}`).join("  ") || "no face";
    if (cam.live && t.img.dataset.broken) { delete t.img.dataset.broken; t.img.src = cam.url + "?t=" + Date.now(); }
    t.img.onerror = () => { t.img.dataset.broken = "1"; };
  }
  $("#live-empty").classList.toggle("hidden", data.cameras.some((c) => c.frames > 0));
};

// -- events ----------------------------------------------------------------------------------------------

let selectedEvent = null;

function eventQuery() {
  const f = $("#event-filters");
  const q = new URLSearchParams();
  for (const k of ["camera", "person", "unknown", "kind", "since", "until"]) {
    const v = f.elements[k].value.trim();
    if (v) q.set(k, v);
  }
  q.set("limit", "200");
  return q.toString();
}

function label(e) {
  return e.name || e.identity || (e.unknown_id ? `unknown#${e.unknown_id}` : "unknown");
}

loaders.events = async () => {
  const [data, cams] = await Promise.all([api("/api/events?" + eventQuery()), api("/api/live")]);
  const sel = $("#event-filters").elements.camera;
  const have = new Set([...sel.options].map((o) => o.value));
  for (const c of cams.cameras) if (!have.has(c.camera)) sel.append(el("option", {value: c.camera}, c.camera));
  const list = $("#timeline");
  list.replaceChildren(...data.events.map((e) => el("li", {
    class: "event" + (selectedEvent === e.event_id ? " selected" : ""), "data-event": e.event_id,
    onclick: () => openEvent(e.event_id),
  }, thumb(e.crop_url, label(e)), el("div", {class: "what"},
    el("strong", {}, label(e)), el("span", {class: "kind"}, e.kind.replace("_", " ")),
    el("div", {class: "muted"}, `${e.camera} · track ${e.track_id ?? "?"} · ${when(e.ts_ns)}` +
      (typeof e.score === "number" ? ` · score ${e.score.toFixed(2)}` : ""))))));
  if (!data.events.length) list.append(el("li", {class: "muted"}, "No events match."));
};

async function openEvent(id) {
  selectedEvent = id;
  const e = await api("/api/events/" + encodeURIComponent(id));
  const box = $("#event-detail");
  const picture = e.frame_url || e.crop_url;
  const actions = el("div", {class: "actions"});
  if (e.person) {
    actions.append(el("button", {type: "button", class: "danger", onclick: async () => {
      try {
        await api("/api/feedback", {method: "POST", json: {event_id: e.event_id, not: e.person}});
        notice(`Noted: this is not ${e.person}. The next decisions will not name them for this face.`);
      } catch (err) { notice(err.message, true); }
    }}, `This is not ${e.person}`));
  }
  if (e.unknown_id) {
    const input = el("input", {placeholder: "name", "aria-label": "name for this unknown"});
    actions.append(input, el("button", {type: "button", onclick: async () => {
      try {
        await api(`/api/unknowns/${e.unknown_id}/name`, {method: "POST", json: {name: input.value}});
        notice(`unknown#${e.unknown_id} is now ${input.value}`);
      } catch (err) { notice(err.message, true); }
    }}, `Name unknown#${e.unknown_id}`));
  }
  box.replaceChildren(
    el("button", {type: "button", class: "close", onclick: () => { box.classList.add("hidden"); selectedEvent = null; }}, "×"),
    el("h3", {}, `${label(e)} · ${e.kind.replace("_", " ")}`),
    picture ? el("img", {src: picture, class: "frame", alt: "annotated frame of the event"}) : el("p", {class: "muted"}, "no picture kept"),
    el("dl", {}, ...[["camera", e.camera], ["time", when(e.ts_ns)], ["track", e.track_ref], ["event", e.event_id],
      ["score", typeof e.score === "number" ? e.score.toFixed(3) : "-"], ["before", e.previous_identity || "-"]]
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "-")])),
    actions);
  box.classList.remove("hidden");
  for (const li of document.querySelectorAll("#timeline li")) li.classList.toggle("selected", li.dataset.event === id);
}

$("#event-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loaders.events().catch((e) => notice(e.message, true)); });

// -- face library ----------------------------------------------------------------------------------------

function confirmButton(text, really, action) {
  const b = el("button", {type: "button", class: "danger"}, text);
  b.addEventListener("click", async () => {
    if (!b.dataset.armed) { b.dataset.armed = "1"; b.textContent = really; return; }
    try { await action(); } catch (err) { notice(err.message, true); }
  });
  return b;
}

loaders.library = async () => {
  const [people, unknowns] = await Promise.all([api("/api/people"), api("/api/unknowns")]);
  $("#people-names").replaceChildren(...people.people.map((p) => el("option", {value: p.name})));
  $("#people").replaceChildren(...people.people.map((p) => {
    const input = el("input", {value: p.name, "aria-label": `new name for ${p.name}`});
    return el("div", {class: "card person", "data-person": p.name},
      el("div", {class: "photos"}, p.photos.length ? p.photos.map((u) => thumb(u, p.name)) : thumb(null)),
      el("h3", {}, p.name),
      el("p", {class: "muted"}, `${p.embeddings} embedding(s) · quality ${p.quality ?? "-"} · ` +
        `${p.rejections} rejection(s) · since ${when(p.created_ns)}`),
      el("div", {class: "actions"}, input, el("button", {type: "button", onclick: async () => {
        try { await api("/api/people/" + encodeURIComponent(p.name), {method: "PATCH", json: {name: input.value}});
              notice(`renamed ${p.name} to ${input.value}`); await loaders.library(); } catch (err) { notice(err.message, true); }
      }}, "Rename"), confirmButton("Forget", "Really forget?", async () => {
        const r = await api("/api/people/" + encodeURIComponent(p.name), {method: "DELETE"});
        notice(`forgot ${r.forgot}: ${r.events_deleted} event(s), ${r.crops_deleted} crop(s)`);
        await loaders.library();
      })));
  }));
  if (!people.people.length) $("#people").append(el("p", {class: "muted"}, "Nobody is enrolled yet."));
  $("#unknowns").replaceChildren(...unknowns.unknowns.map((u) => {
    const input = el("input", {placeholder: "name", "aria-label": `name for ${u.label}`});
    return el("div", {class: "card unknown", "data-unknown": u.id},
      el("div", {class: "photos"}, u.crops.length ? u.crops.map((c) => thumb(c, u.label)) : thumb(null)),
      el("h3", {}, u.label),
      el("p", {class: "muted"}, `seen ${u.seen} time(s), ${u.seen_today} today · last ${when(u.last_ns)}`),
      el("div", {class: "actions"}, input, el("button", {type: "button", onclick: async () => {
        try { await api(`/api/unknowns/${u.id}/name`, {method: "POST", json: {name: input.value}});
              notice(`${u.label} is now ${input.value}`); await loaders.library(); } catch (err) { notice(err.message, true); }
      }}, "Name"), confirmButton("Dismiss", "Really dismiss?", async () => {
        await api(`/api/unknowns/${u.id}/dismiss`, {method: "POST"});
        notice(`dismissed ${u.label}`);
        await loaders.library();
      })));
  }));
  if (!unknowns.unknowns.length) $("#unknowns").append(el("p", {class: "muted"}, "No unknown faces."));
};

$("#enrol").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const out = $("#enrol-result");
  out.textContent = "enrolling…";
  out.className = "result";
  try {
    const r = await api("/api/people", {method: "POST", form: new FormData(f)});
    out.textContent = `${r.name}: ${r.added} photo(s) enrolled, ${r.embeddings} in the gallery` +
      (r.refused.length ? `; refused: ${r.refused.join("; ")}` : "");
    out.className = "result ok";
    f.reset();
    await loaders.library();
  } catch (err) {
    out.textContent = err.message;
    out.className = "result error";
  }
});

// -- status ----------------------------------------------------------------------------------------------

function table(head, rows) {
  return el("table", {}, head ? el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))) : null,
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

loaders.status = async () => {
  const s = await api("/api/status");
  const stages = table(["stage", "state", "pid", "metrics", "engine backends"], s.stages.map((st) => [
    el("span", {class: st.running ? "up" : "down"}, st.stage),
    st.running ? (st.up === false ? "starting" : "up") : "down",
    st.pid ?? "-",
    st.metrics_url ? el("a", {href: st.metrics_url, target: "_blank", rel: "noopener"}, st.metrics_url) : "-",
    Object.entries(st.backends || {}).map(([m, b]) => `${m}: ${b.backend}`).join(", ") || "-",
  ]));
  const sources = table(["id", "kind", "uri", "policy", "max fps", "loop"],
    s.sources.map((x) => [x.id, x.kind ?? "-", x.uri, x.policy ?? "-", x.max_fps ?? "-", x.loop ? "yes" : "no"]));
  const g = s.gallery;
  $("#status").replaceChildren(
    el("h2", {}, "Stages"), stages, el("p", {class: "muted"}, `run directory ${s.run_dir}`),
    el("h2", {}, "Sources"), sources,
    el("h2", {}, "Gallery and events"),
    table(null, [
      ["gallery", `${g.path}${g.exists ? "" : " (not created yet)"}${g.encrypted ? " (encrypted)" : ""}`],
      ["people", g.people ?? 0], ["embeddings", g.embeddings ?? 0], ["unknown clusters", g.unknowns ?? 0],
      ["events store", `${s.events.path}: ${s.events.count} event(s)`],
      ["live view", `${s.web.preview_endpoint}: ${s.web.preview_frames} frame(s), ${s.web.preview_rejected} refused`],
      ["web app", `${s.web.url || location.origin} · auth ${s.web.auth ? "on" : "off (loopback only)"}`],
    ]));
};

// -- start -----------------------------------------------------------------------------------------------

(async () => {
  try {
    const me = await api("/api/whoami");
    $("#who").textContent = me.auth ? me.user : "";
    if (me.auth) {
      const b = $("#logout");
      b.classList.remove("hidden");
      b.addEventListener("click", async () => { await api("/logout", {method: "POST"}); location.href = "/login"; });
    }
  } catch (e) { /* redirected to /login */ }
  show(location.hash.slice(1) || "live");
})();
