/* Usage chart: inline SVG drawn from /dashboard/usage.json (GPUs held, spend, spend rate, events). */
(function () {
  "use strict";
  const Flare = (window.Flare = window.Flare || {});
  const NS = "http://www.w3.org/2000/svg";
  const MARKER_COLORS = { Running: "#16a34a", Succeeded: "#0f766e", Failed: "#dc2626", Cancelled: "#6b7280", Queued: "#d97706" };

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceMax(value, integer) {
    if (!(value > 0)) return integer ? 1 : 1;
    const exp = Math.pow(10, Math.floor(Math.log10(value)));
    const steps = [1, 2, 2.5, 5, 10];
    for (const s of steps) { if (s * exp >= value) return integer ? Math.max(1, Math.ceil(s * exp)) : s * exp; }
    return 10 * exp;
  }

  function short(value) {
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k";
    if (value >= 100) return value.toFixed(0);
    if (value >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  function timeLabel(ms, spanMs) {
    const d = new Date(ms);
    if (spanMs > 2 * 86400000) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " +
      d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  Flare.drawUsageChart = function (box, data) {
    const points = (data.points || []).map((p) => ({ t: Date.parse(p.t), gpus: p.gpus, hourly: p.hourly, spent: p.spent }));
    box.innerHTML = "";
    if (!points.length) { box.innerHTML = '<p class="empty">No usage in this window.</p>'; return; }
    const W = Math.max(300, box.clientWidth || 600);
    const narrow = W < 480;
    const M = { left: narrow ? 34 : 44, right: narrow ? 40 : 56, top: 18 };
    const topH = narrow ? 100 : 140, gap = 34, bottomH = narrow ? 86 : 118, axisH = 22;
    const H = M.top + topH + gap + bottomH + axisH;
    const t0 = Date.parse(data.start), t1 = Date.parse(data.end);
    const span = Math.max(1, t1 - t0);
    const x = (t) => M.left + ((t - t0) / span) * (W - M.left - M.right);
    const gpuMax = niceMax(Math.max(...points.map((p) => p.gpus)), true);
    const spentMax = niceMax(Math.max(...points.map((p) => p.spent)), false);
    const rateMax = niceMax(Math.max(...points.map((p) => p.hourly)), false);
    const topY = (v) => M.top + topH - (v / gpuMax) * topH;
    const botTop = M.top + topH + gap;
    const spentY = (v) => botTop + bottomH - (v / spentMax) * bottomH;
    const rateY = (v) => botTop + bottomH - (v / rateMax) * bottomH;
    const currency = data.currency || "EUR";

    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "presentation" });
    const grid = el("g", {}, svg), axis = el("g", { class: "axis" }, svg);

    // Panel grids and axes
    [[topY, gpuMax, M.top, "GPUs held", (v) => String(Math.round(v))], [spentY, spentMax, botTop, "Spent · " + currency, short]]
      .forEach(([scale, max, top, title, fmt]) => {
        el("text", { x: M.left, y: top - 6, class: "panel-title" }, svg).textContent = title;
        const fractions = title === "GPUs held" && max % 2 ? [0, 1] : [0, 0.5, 1];
        fractions.forEach((f) => {
          const y = scale(max * f);
          el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid-line" }, grid);
          const label = el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end" }, axis);
          label.textContent = fmt(max * f);
        });
      });
    [0, 0.5, 1].forEach((f) => {
      const label = el("text", { x: W - M.right + 6, y: rateY(rateMax * f) + 4, "text-anchor": "start" }, axis);
      label.textContent = short(rateMax * f) + (f === 1 ? "/h" : "");
    });
    const ticks = narrow ? 3 : 5;
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + (span * i) / ticks;
      const label = el("text", { x: x(t), y: H - 4, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" }, axis);
      label.textContent = timeLabel(t, span);
    }

    // GPUs: step area
    let d = `M${x(points[0].t)},${topY(points[0].gpus)}`;
    for (let i = 1; i < points.length; i++) d += `H${x(points[i].t)}V${topY(points[i].gpus)}`;
    d += `H${x(t1)}`;
    el("path", { d: d + `V${topY(0)}H${x(points[0].t)}Z`, class: "gpu-area" }, svg);
    el("path", { d, class: "gpu-line" }, svg);

    // Spend: cumulative line (exact: linear between points) and the rate as a dashed step line
    let s = `M${x(points[0].t)},${spentY(points[0].spent)}`;
    for (let i = 1; i < points.length; i++) s += `L${x(points[i].t)},${spentY(points[i].spent)}`;
    el("path", { d: s + `V${spentY(0)}H${x(points[0].t)}Z`, class: "spend-area" }, svg);
    el("path", { d: s, class: "spend-line" }, svg);
    let r = `M${x(points[0].t)},${rateY(points[0].hourly)}`;
    for (let i = 1; i < points.length; i++) r += `H${x(points[i].t)}V${rateY(points[i].hourly)}`;
    el("path", { d: r + `H${x(t1)}`, class: "rate-line" }, svg);

    // Event markers on the GPU panel's baseline
    (data.markers || []).forEach((m) => {
      const t = Date.parse(m.t);
      if (t < t0 || t > t1) return;
      const dot = el("circle", { cx: x(t), cy: topY(0), r: 4, fill: MARKER_COLORS[m.phase] || "#64748b", stroke: "#fff", "stroke-width": 1.5 }, svg);
      el("title", {}, dot).textContent = `${Flare.time(m.t)} ${m.name} → ${m.phase} (${m.reason})`;
    });

    // Hover cursor + tooltip
    const cursor = el("line", { y1: M.top, y2: botTop + bottomH, class: "cursor", visibility: "hidden" }, svg);
    const hit = el("rect", { x: M.left, y: M.top, width: W - M.left - M.right, height: botTop + bottomH - M.top, fill: "transparent" }, svg);
    const tip = document.createElement("div");
    tip.className = "chart-tip"; tip.hidden = true;
    box.appendChild(svg); box.appendChild(tip);

    function at(t) {
      let lo = 0, hi = points.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (points[mid].t <= t) lo = mid; else hi = mid - 1; }
      const p = points[lo], next = points[lo + 1];
      const spent = next ? p.spent + (next.spent - p.spent) * ((t - p.t) / Math.max(1, next.t - p.t)) : p.spent;
      return { gpus: p.gpus, hourly: p.hourly, spent };
    }
    function move(event) {
      const rect = svg.getBoundingClientRect();
      const px = ((event.clientX - rect.left) / rect.width) * W;
      const t = t0 + ((px - M.left) / (W - M.left - M.right)) * span;
      if (t < t0 || t > t1) { leave(); return; }
      const v = at(t);
      cursor.setAttribute("x1", px); cursor.setAttribute("x2", px); cursor.setAttribute("visibility", "visible");
      tip.hidden = false;
      tip.style.left = Math.min(Math.max((px / W) * rect.width, 70), rect.width - 70) + "px";
      tip.style.top = ((M.top + 10) / H) * rect.height + "px";
      tip.innerHTML = `${timeLabel(t, span)} · <b>${v.gpus}</b> GPU${v.gpus === 1 ? "" : "s"} · ` +
        `${Flare.money(v.hourly, currency)}/h · spent ${Flare.money(v.spent, currency)}`;
    }
    function leave() { cursor.setAttribute("visibility", "hidden"); tip.hidden = true; }
    hit.addEventListener("pointermove", move);
    hit.addEventListener("pointerdown", move);
    hit.addEventListener("pointerleave", leave);
  };
})();
