/* FLARE portal: shared helpers and the live-event websocket client. Plain JS, no build step. */
(function () {
  "use strict";

  const Flare = (window.Flare = window.Flare || {});

  Flare.esc = function (value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  };

  Flare.money = function (value, currency) {
    if (value == null || isNaN(value)) return "—";
    return Number(value).toFixed(2) + " " + Flare.esc(currency || "EUR");
  };

  Flare.duration = function (seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    const parts = [];
    if (d) parts.push(d + "d");
    if (h) parts.push(h + "h");
    if (m) parts.push(m + "m");
    if (!parts.length) parts.push((seconds % 60) + "s");
    return parts.join(" ");
  };

  Flare.time = function (iso, withDate) {
    if (!iso) return "—";
    const date = new Date(iso);
    const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (withDate) Object.assign(opts, { month: "short", day: "numeric" });
    return date.toLocaleString(undefined, opts);
  };

  Flare.json = function (id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  };

  /* Websocket to /ws/intents/ (session auth). Reconnects with exponential backoff and jitter;
     the server sends a fresh snapshot on every (re)connect, which is how clients resync. */
  Flare.LiveSocket = function (handlers) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + "/ws/intents/";
    let socket = null, attempt = 0, timer = null, pingTimer = null, pongDeadline = null, stopped = false;
    const indicator = document.getElementById("live-state");

    function setState(state, text) {
      if (indicator) { indicator.dataset.state = state; indicator.textContent = text; }
      if (handlers.onState) handlers.onState(state);
    }

    function schedule() {
      if (stopped) return;
      const base = Math.min(30000, 1000 * Math.pow(2, attempt));
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      attempt += 1;
      setState("reconnecting", "reconnecting in " + Math.ceil(delay / 1000) + "s");
      clearTimeout(timer);
      timer = setTimeout(connect, delay);
    }

    function heartbeat() {
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        if (!socket || socket.readyState !== WebSocket.OPEN) return;
        socket.send(JSON.stringify({ type: "ping" }));
        clearTimeout(pongDeadline);
        pongDeadline = setTimeout(() => { if (socket) socket.close(); }, 10000);
      }, 25000);
    }

    function connect() {
      clearTimeout(timer);
      if (stopped) return;
      setState("connecting", attempt ? "reconnecting…" : "connecting…");
      try { socket = new WebSocket(url); } catch (e) { schedule(); return; }
      socket.onopen = () => heartbeat();
      socket.onmessage = (message) => {
        clearTimeout(pongDeadline);
        let data;
        try { data = JSON.parse(message.data); } catch (e) { return; }
        if (data.type === "hello") { attempt = 0; setState("open", "live"); }
        if (data.type === "error") { handlers.onError && handlers.onError(data); return; }
        if (data.type === "snapshot" && handlers.onSnapshot) handlers.onSnapshot(data);
        if (data.type === "intent.event" && handlers.onEvent) handlers.onEvent(data.event, data.intent);
      };
      socket.onclose = (event) => {
        clearInterval(pingTimer);
        clearTimeout(pongDeadline);
        socket = null;
        if (event.code === 4401 || event.code === 4403) {
          stopped = true;
          setState("closed", event.code === 4401 ? "signed out — reload to sign in" : "not allowed");
          return;
        }
        schedule();
      };
    }

    function nudge() { if (!socket && !stopped) { attempt = 0; connect(); } }
    window.addEventListener("online", nudge);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) nudge(); });

    connect();
    return {
      resync() { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resync" })); },
      close() { stopped = true; if (socket) socket.close(); },
    };
  };

  /* <time datetime="…" data-local> shows the reader's local time (the server renders UTC). */
  Flare.localTimes = function (root) {
    (root || document).querySelectorAll("time[datetime][data-local]").forEach((node) => {
      const date = new Date(node.getAttribute("datetime"));
      if (isNaN(date)) return;
      node.textContent = Flare.time(node.getAttribute("datetime"), node.dataset.local === "date");
      node.title = date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    });
  };
  Flare.localTimes();

  /* Buttons with data-confirm ask before their form submits. */
  document.addEventListener("submit", (event) => {
    const button = event.submitter || event.target.querySelector("[data-confirm]");
    const text = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (text && !window.confirm(text)) event.preventDefault();
  });

  /* Copy buttons: data-copy="#selector". */
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.textContent.trim();
    const done = () => { const old = button.textContent; button.textContent = "Copied"; setTimeout(() => (button.textContent = old), 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done);
    else {
      const range = document.createRange(); range.selectNodeContents(source);
      const selection = getSelection(); selection.removeAllRanges(); selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for manual copy */ }
    }
  });

  /* Sortable tables: <table class="sortable"> with <th data-sort="text|num">. */
  document.addEventListener("click", (event) => {
    const th = event.target.closest("table.sortable th[data-sort]");
    if (!th) return;
    const table = th.closest("table");
    const index = Array.from(th.parentNode.children).indexOf(th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const numeric = th.dataset.sort === "num";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const key = (row) => {
      const cell = row.cells[index];
      const raw = cell ? (cell.dataset.value != null ? cell.dataset.value : cell.textContent.trim()) : "";
      return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
    };
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
    rows.forEach((row) => body.appendChild(row));
  });

  /* Filter forms that submit themselves when a control changes. */
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    form.addEventListener("change", () => form.requestSubmit ? form.requestSubmit() : form.submit());
  });
})();
