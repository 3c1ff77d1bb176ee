/* Dashboard: live intents table, quota gauges, usage chart, activity feed. */
(function () {
  "use strict";
  const Flare = window.Flare;
  const config = Flare.json("dashboard-config");
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const RING = 150.8;
  const rowsBody = document.getElementById("intent-rows");
  const feed = document.getElementById("feed");
  const chartBox = document.getElementById("usage-chart");
  const state = new Map(); // intent_id → {data, base, baseAt}
  const counts = {};
  let windowName = localStorage.getItem("flare.window") || config.window;
  let lastUsage = null, usageTimer = null;

  document.querySelectorAll("#status-chips .badge").forEach((chip) => {
    const [status, n] = chip.textContent.trim().split(/\s+/);
    counts[status] = parseInt(n, 10) || 0;
  });

  function upsert(intent, fromSnapshot) {
    const known = state.get(intent.intent_id);
    const wasRunning = known && known.data.status === "running";
    const entry = known || {};
    entry.data = intent;
    // Event snapshots carry the stored cost, which lags while running; keep the live base then.
    if (fromSnapshot || !wasRunning || intent.status !== "running") {
      entry.base = intent.current_cost_value || 0;
      entry.baseAt = Date.now();
    }
    state.set(intent.intent_id, entry);
    return !known;
  }

  function liveCost(entry) {
    const d = entry.data;
    if (d.status === "running" && d.cost_per_hour) {
      return entry.base + d.cost_per_hour * (Date.now() - entry.baseAt) / 3600000;
    }
    return entry.base;
  }

  function runtime(d) {
    if (!d.started_at) return "—";
    const end = d.finished_at ? Date.parse(d.finished_at) : Date.now();
    return Flare.duration((end - Date.parse(d.started_at)) / 1000);
  }

  function rowHtml(entry) {
    const d = entry.data, e = Flare.esc;
    const href = config.detailUrl.replace("INTENT_ID", encodeURIComponent(d.intent_id));
    const queue = d.queue_position ? ` <small class="muted">#${e(d.queue_position)} in queue</small>` : "";
    const rate = d.cost_per_hour != null ? `${Number(d.cost_per_hour).toFixed(2)} ${e(d.currency)}/h` : "—";
    return `<tr data-intent-id="${e(d.intent_id)}" data-status="${e(d.status)}">
      <td class="primary" data-label="Intent"><a class="intent-name" href="${href}">${e(d.name)}</a><span class="intent-id">${e(d.intent_id)}</span></td>
      <td data-label="Status"><span class="badge st-${e(d.status)}" data-field="status">${e(d.status)}</span></td>
      <td data-label="Phase"><span data-field="phase">${e(d.phase)}</span>${queue}</td>
      <td data-label="Provider" data-field="provider">${e(d.provider || "—")}</td>
      <td class="num" data-label="GPUs" data-field="gpus">${e(d.gpus)}</td>
      <td class="num" data-label="Cost so far" data-field="cost">${Flare.money(liveCost(entry), d.currency)}</td>
      <td class="num" data-label="Rate" data-field="rate">${rate}</td>
      <td class="nowrap" data-label="Runtime" data-field="runtime">${runtime(d)}</td>
    </tr>`;
  }

  function ordered() {
    const all = Array.from(state.values());
    const live = all.filter((x) => !TERMINAL.has(x.data.status))
      .sort((a, b) => (b.data.created_at || "").localeCompare(a.data.created_at || ""));
    const done = all.filter((x) => TERMINAL.has(x.data.status))
      .sort((a, b) => (b.data.finished_at || "").localeCompare(a.data.finished_at || "")).slice(0, 30);
    return live.concat(done);
  }

  function render(flashIds) {
    const list = ordered();
    if (!list.length) {
      rowsBody.innerHTML = '<tr class="empty-row"><td colspan="8" class="empty">No intents yet. <a href="/intents/new">Submit your first one</a>.</td></tr>';
      return;
    }
    rowsBody.innerHTML = list.map(rowHtml).join("");
    (flashIds || []).forEach((id) => {
      const row = rowsBody.querySelector(`tr[data-intent-id="${CSS.escape(id)}"]`);
      if (row) row.classList.add("flash");
    });
  }

  function tick() {
    rowsBody.querySelectorAll('tr[data-status="running"]').forEach((row) => {
      const entry = state.get(row.dataset.intentId);
      if (!entry) return;
      row.querySelector('[data-field="cost"]').textContent = Flare.money(liveCost(entry), entry.data.currency);
      row.querySelector('[data-field="runtime"]').textContent = runtime(entry.data);
    });
  }

  function renderChips() {
    const box = document.getElementById("status-chips");
    box.innerHTML = Object.keys(counts).filter((s) => counts[s] > 0).sort()
      .map((s) => `<span class="badge st-${Flare.esc(s)}">${Flare.esc(s)} ${counts[s]}</span>`).join("");
  }

  function addFeed(event) {
    const empty = feed.querySelector("[data-empty]");
    if (empty) empty.remove();
    const li = document.createElement("li");
    const change = event.kind === "transition" && event.from_phase !== event.phase
      ? `${Flare.esc(event.from_phase)} → <b>${Flare.esc(event.phase)}</b>`
      : `<b>${Flare.esc(event.reason || event.kind)}</b>`;
    li.innerHTML = `<time>${Flare.time(event.time)}</time><span class="what"><a href="${config.detailUrl.replace("INTENT_ID", encodeURIComponent(event.intent_id))}">${Flare.esc(event.name)}</a> ${change}<br><small class="muted">${Flare.esc(event.message || "")}</small></span>`;
    feed.prepend(li);
    while (feed.children.length > 10) feed.lastElementChild.remove();
  }

  function renderGauges(gauges) {
    gauges.forEach((g) => {
      const node = document.querySelector(`.gauge[data-key="${g.key}"]`);
      if (!node) return;
      node.dataset.level = g.ratio >= 0.9 ? "high" : g.ratio >= 0.75 ? "warn" : "ok";
      node.querySelector(".ring").setAttribute("stroke-dashoffset", (RING * (1 - g.ratio)).toFixed(2));
      node.querySelector(".pct").textContent = g.percent == null ? "–" : g.percent + "%";
      node.querySelector('[data-field="text"]').textContent = g.text;
    });
  }

  function renderStats(data) {
    const last = data.points[data.points.length - 1] || { gpus: 0, hourly: 0 };
    document.getElementById("chart-stats").innerHTML =
      `<span><b>${last.gpus}</b><small class="muted">GPUs now</small></span>` +
      `<span><b>${data.totals.peak_gpus}</b><small class="muted">peak in ${Flare.esc(data.window)}</small></span>` +
      `<span><b>${Flare.money(last.hourly, data.currency)}/h</b><small class="muted">billed per hour now</small></span>` +
      `<span><b>${Flare.money(data.totals.spent, data.currency)}</b><small class="muted">spent in ${Flare.esc(data.window)}</small></span>`;
  }

  function refreshUsage() {
    clearTimeout(usageTimer);
    return fetch(`${config.usageUrl}?window=${encodeURIComponent(windowName)}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => {
        lastUsage = data;
        renderGauges(data.gauges);
        renderStats(data);
        Flare.drawUsageChart(chartBox, data);
        const at = Date.parse(data.time);
        const skew = Date.now() - at;
        Object.entries(data.live_costs).forEach(([id, cost]) => {
          const entry = state.get(id);
          if (entry) { entry.base = cost; entry.baseAt = at + skew; }
        });
        tick();
      })
      .catch(() => { /* next event or timer retries */ })
      .finally(() => { usageTimer = setTimeout(refreshUsage, 30000); });
  }

  let pending = null;
  function refreshSoon() { clearTimeout(pending); pending = setTimeout(refreshUsage, 1200); }

  document.querySelectorAll("#window-buttons button").forEach((button) => {
    button.classList.toggle("active", button.dataset.window === windowName);
    button.addEventListener("click", () => {
      windowName = button.dataset.window;
      localStorage.setItem("flare.window", windowName);
      document.querySelectorAll("#window-buttons button").forEach((b) => b.classList.toggle("active", b === button));
      refreshUsage();
    });
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => lastUsage && Flare.drawUsageChart(chartBox, lastUsage), 150);
  });

  (Flare.json("intent-data") || []).forEach((intent) => upsert(intent, true));
  render();
  renderChips();
  refreshUsage();
  setInterval(tick, 1000);

  Flare.LiveSocket({
    onSnapshot(snapshot) {
      const seen = new Set();
      snapshot.intents.concat(snapshot.recent || []).forEach((intent) => { upsert(intent, true); seen.add(intent.intent_id); });
      // Live rows the server no longer lists finished while we were away and aged out: drop them.
      for (const [id, entry] of state) if (!seen.has(id) && !TERMINAL.has(entry.data.status)) state.delete(id);
      render();
      refreshSoon();
    },
    onEvent(event, intent) {
      if (event.kind === "submitted") counts[event.status] = (counts[event.status] || 0) + 1;
      else if (event.from_status && event.from_status !== event.status) {
        counts[event.from_status] = Math.max(0, (counts[event.from_status] || 0) - 1);
        counts[event.status] = (counts[event.status] || 0) + 1;
      }
      if (intent) upsert(intent, false);
      render([event.intent_id]);
      renderChips();
      addFeed(event);
      refreshSoon();
    },
  });
})();
