// Progressive enhancement for forms: every field still works as plain text without it.
"use strict";

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(r.status);
  return r.json();
}

function pickedLabel(input) {
  return document.querySelector('.picked[data-for="' + input.id + '"]');
}

// Division picker: cascading selects (province → prefecture → county → township)
// that write the chosen code into the text field; typing a code updates the selects.
function divisionPicker(input) {
  const levels = (input.dataset.levels || "").split("|");
  const choose = input.dataset.choose || "";
  const row = document.createElement("div");
  row.className = "division-row";
  const selects = levels.map((label, i) => {
    const s = document.createElement("select");
    s.setAttribute("aria-label", label);
    s.dataset.level = i;
    s.hidden = i > 0;
    row.appendChild(s);
    return s;
  });
  input.closest("label").after(row);
  const label = pickedLabel(input);

  async function fill(i, parent, selected) {
    const s = selects[i];
    const items = await getJSON("/api/v1/divisions" + (parent ? "?parent=" + encodeURIComponent(parent) : ""));
    s.replaceChildren(new Option(choose + " " + levels[i], ""));
    for (const d of items) s.add(new Option(d.name, d.code, false, d.code === selected));
    s.hidden = items.length === 0;
    for (let j = i + 1; j < selects.length; j++) { selects[j].hidden = true; selects[j].replaceChildren(); }
  }

  // The short codes of each level a full code passes through: 32, 3207, 320724, 320724100.
  function chain(code) {
    const c = (code || "").trim();
    return [2, 4, 6, 9].filter((n) => c.length >= n).map((n) => c.slice(0, n));
  }

  async function showCode(code) {
    const parts = chain(code);
    await fill(0, "", parts[0]);
    for (let i = 1; i < parts.length; i++) await fill(i, parts[i - 1], parts[i]);
    if (parts.length && parts.length < selects.length) await fill(parts.length, parts[parts.length - 1], null);
  }

  selects.forEach((s, i) => s.addEventListener("change", async () => {
    const code = s.value || (i > 0 ? selects[i - 1].value : "");
    input.value = code;
    if (label) label.textContent = selects.slice(0, i + 1).filter((x) => x.value)
      .map((x) => x.options[x.selectedIndex].text).join(" ");
    if (s.value && i + 1 < selects.length) await fill(i + 1, s.value, null).catch(() => {});
    else for (let j = i + 1; j < selects.length; j++) { selects[j].hidden = true; selects[j].replaceChildren(); }
  }));
  input.addEventListener("change", () => showCode(input.value).catch(() => {}));
  showCode(input.value).catch(() => {});
}

// Organization picker: suggestions by name or code from the organizations the user may see.
let listCounter = 0;
function orgPicker(input) {
  const list = document.createElement("datalist");
  list.id = "org-options-" + (++listCounter);
  input.setAttribute("list", list.id);
  input.after(list);
  const label = pickedLabel(input);
  let timer = null;
  let names = new Map();
  async function lookup() {
    const q = input.value.trim();
    if (names.has(q)) { if (label) label.textContent = names.get(q); return; }
    if (q.length < 1) return;
    const source = input.dataset.orgSource || "/api/v1/org-search";
    const items = await getJSON(source + "?q=" + encodeURIComponent(q));
    list.replaceChildren();
    names = new Map(items.map((o) => [o.code, o.name]));
    for (const o of items) {
      const opt = document.createElement("option");
      opt.value = o.code;
      opt.label = o.name;
      opt.textContent = o.name;
      list.appendChild(opt);
    }
    if (label) label.textContent = names.get(q) || "";
  }
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => lookup().catch(() => {}), 200); });
  if (input.value) lookup().catch(() => {});
}

// A screening run's progress: polled until the run ends, then the page is shown again.
function runProgress(section) {
  const [queued, preparing, matching] = (section.dataset.phases || "").split("|");
  const names = { queued, preparing, matching };
  const set = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  async function poll() {
    const r = await getJSON(section.dataset.progressUrl);
    if (r.status !== "running") { location.reload(); return; }
    const p = r.progress;
    if (p) {
      set("progress-phase", names[p.phase] || p.phase);
      set("progress-rows", p.rows);
      set("progress-errors", p.errors);
      set("progress-percent", p.percent == null ? "" : "· " + p.percent + "%");
      const bar = document.getElementById("progress-bar");
      if (bar && p.percent != null) bar.value = p.percent;
    }
    setTimeout(tick, 1000);
  }
  // Signed out or gone: the page says so; a network hiccup: try again.
  const tick = () => poll().catch((e) => (/^4/.test(e.message) ? location.reload() : setTimeout(tick, 5000)));
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-progress-url]").forEach(runProgress);
  document.querySelectorAll("input[data-division-picker]").forEach(divisionPicker);
  document.querySelectorAll("input[data-org-picker]").forEach(orgPicker);
});
