/* Intent detail: live updates. The server renders every section; on an event for this intent (or a
   resync after reconnecting) the page refetches itself and swaps the changed sections in place. */
(function () {
  "use strict";
  const Flare = window.Flare;
  const config = Flare.json("intent-config");
  const FRAGMENTS = ["summary", "queue", "timeline", "event-count", "placement", "conditions"];
  let timer = null, baseAt = Date.now();

  function swap(doc) {
    const before = new Set(Array.from(document.querySelectorAll("#timeline li[data-event-id]")).map((li) => li.dataset.eventId));
    FRAGMENTS.forEach((name, index) => {
      const fresh = doc.querySelector(`[data-fragment="${name}"]`);
      const current = document.querySelector(`[data-fragment="${name}"]`);
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      else if (current) current.remove();
      else if (fresh) {
        const anchor = document.querySelector(`[data-fragment="${FRAGMENTS[index - 1]}"]`);
        if (anchor) anchor.after(document.importNode(fresh, true));
      }
    });
    const badge = doc.getElementById("intent-status");
    if (badge) document.getElementById("intent-status").replaceWith(document.importNode(badge, true));
    if (!doc.getElementById("cancel-form")) {
      const form = document.getElementById("cancel-form");
      if (form) form.remove();
    }
    document.querySelectorAll("#timeline li[data-event-id]").forEach((li) => {
      if (before.size && !before.has(li.dataset.eventId)) li.classList.add("new");
    });
    baseAt = Date.now();
    Flare.localTimes();
  }

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => swap(new DOMParser().parseFromString(html, "text/html")))
        .catch(() => { /* the next event or resync tries again */ });
    }, 200);
  }

  setInterval(() => {
    const cost = document.getElementById("intent-cost");
    if (!cost || !cost.dataset.running || !cost.dataset.rate) return;
    const value = parseFloat(cost.dataset.base) + parseFloat(cost.dataset.rate) * (Date.now() - baseAt) / 3600000;
    cost.textContent = Flare.money(value, cost.dataset.currency);
  }, 1000);

  Flare.LiveSocket({
    onSnapshot() { refresh(); },
    onEvent(event) { if (event.intent_id === config.intentId) refresh(); },
  });
})();
