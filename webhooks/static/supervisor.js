// The supervisor's floor and the wallboard: the live part of the page is drawn again by
// the server whenever the event stream says the floor changed (and every 15 seconds
// whatever happens); timers tick each second on the server's clock. A form being used
// is never redrawn under the person using it: the redraw waits until they leave it.
(function () {
  "use strict";
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const status = document.getElementById("floor-status");
  let offset = 0;
  let summary = "";

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const two = (n) => String(n).padStart(2, "0");
    if (s >= 3600) return `${Math.floor(s / 3600)}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
    return `${Math.floor(s / 60)}:${two(s % 60)}`;
  }
  function sync() {
    const holder = live.querySelector("[data-now]");
    if (holder) offset = Number(holder.dataset.now) - Date.now() / 1000;
    const now = holder ? holder.dataset.summary || "" : "";
    if (status && summary && now !== summary) status.textContent = now;
    summary = now;
  }
  function tick() {
    const now = Date.now() / 1000 + offset;
    live.querySelectorAll(".timer[data-since]").forEach((node) => {
      const since = Number(node.dataset.since);
      if (since) node.textContent = duration(now - since);
    });
  }
  function busy() {
    const active = document.activeElement;
    return active && live.contains(active) && /^(SELECT|INPUT|TEXTAREA)$/.test(active.tagName);
  }

  let running = false;
  let again = false;
  async function refresh() {
    if (running) { again = true; return; }
    if (busy()) { window.setTimeout(refresh, 2000); return; }
    running = true;
    try {
      do {
        again = false;
        const response = await fetch(live.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (response.status === 401 || response.redirected) { window.location.assign("/console/login"); return; }
        if (!response.ok) break;
        const html = await response.text();
        if (busy()) { again = false; window.setTimeout(refresh, 2000); break; }
        const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : "";
        live.innerHTML = html;
        if (focused) { const node = document.getElementById(focused); if (node) node.focus(); }
        live.dataset.updated = String(Date.now());
        sync();
        tick();
      } while (again);
    } finally {
      running = false;
    }
  }

  sync();
  tick();
  const events = new EventSource("/console/events");
  events.addEventListener("change", refresh);
  window.setInterval(tick, 1000);
  window.setInterval(refresh, 15000);
})();
