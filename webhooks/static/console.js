// callflow consoles: draw the live panels from JSON state; refresh on server-sent events.
// Everything shown is set with textContent: nothing from the server is parsed as HTML.
"use strict";
(function () {
  const page = document.body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => c && node.appendChild(c));
    return node;
  }
  function time(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleTimeString("en-GB") : "";
  }
  function duration(from, to) {
    const s = Math.max(0, Math.round(to - from));
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  function facts(pairs) {
    const dl = el("dl");
    pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "").forEach(([k, v]) => {
      dl.appendChild(el("dt", { text: k }));
      dl.appendChild(el("dd", { text: String(v) }));
    });
    return dl;
  }
  function postButton(action, label, secondary) {
    const form = el("form", { method: "post", action: action, class: "inline" }, [
      el("input", { type: "hidden", name: "csrf_token", value: csrf }),
      el("button", { type: "submit", text: label, class: secondary ? "secondary" : "" }),
    ]);
    return form;
  }
  function replace(id, nodes) {
    const target = document.getElementById(id);
    if (!target) return;
    target.replaceChildren(...nodes);
  }

  const PROGRESS = {
    requested: "Requested", ringing: "Ringing the team", checking: "Specialist checking your SEES ID",
    accepted: "Accepted: specialist joining", briefing: "Specialist on the line: brief them, then hand over",
    taken_over: "Handed over: the specialist has the call", ended: "Call ended",
    failed: "Not transferred",
  };
  const REASONS = {
    no_answer: "no answer", busy: "the team was busy", failed: "the call to the team failed",
    declined: "the specialist declined", sees_id_mismatch: "the SEES ID check failed",
    cancelled: "you cancelled it", specialist_hung_up: "the specialist hung up",
    caller_hung_up: "the caller hung up", agent_left: "you left the call",
  };

  function drawAgent(state) {
    const availability = document.getElementById("availability");
    if (availability) availability.textContent = state.availability;
    const call = state.call;
    if (!call) {
      replace("call", [el("p", { text: "No call in hand." })]);
    } else {
      replace("call", [facts([
        ["Organisation", call.caller.organisation_name],
        ["Adviser", `${call.caller.adviser_name} (adviser ${call.caller.adviser_number})`],
        ["Verified", `by PIN and a security question (${call.caller.verified_by})`],
        ["Consent to act", call.caller.consent_to_act ? "yes" : "no"],
        ["On the call for", duration(call.waiting_since, state.now)],
        ["State", call.state.replace("_", " ")],
      ])]);
    }
    const h = state.handoff;
    if (!h) {
      replace("progress", [el("p", { text: "No transfer." })]);
    } else {
      const label = PROGRESS[h.state] || h.state;
      const nodes = [
        el("p", { id: "progress-state", class: "state", text: label + (h.reason ? ` (${REASONS[h.reason] || h.reason})` : "") }),
        facts([["Team", h.team_name], ["Customer", `${h.customer.name} (${h.customer.reference_type.toUpperCase()} ${h.customer.reference})`]]),
      ];
      const base = `/console/agent/handoff/${h.id}`;
      if (["requested", "ringing", "checking", "accepted", "briefing"].includes(h.state)) {
        nodes.push(postButton(`${base}/cancel`, "Cancel the transfer", true));
      }
      if (h.state === "briefing") nodes.push(postButton(`${base}/complete`, "Hand over and leave the call"));
      replace("progress", nodes);
    }
    const rows = state.history.map((r) => el("tr", {}, [
      el("td", { text: time(r.started) }), el("td", { text: r.organisation_name }),
      el("td", { text: r.adviser_name }), el("td", { text: r.state.replace("_", " ") }),
      el("td", { text: String(r.handoffs) }),
    ]));
    replace("history", rows.length ? [el("table", {}, [
      el("thead", {}, [el("tr", {}, ["Time", "Organisation", "Adviser", "State", "Hand-offs"].map((t) => el("th", { scope: "col", text: t })))]),
      el("tbody", {}, rows),
    ])] : [el("p", { text: "No calls yet." })]);
  }

  function drawSpecialist(state) {
    const h = state.handoff;
    const g = state.grant;
    const banner = document.getElementById("banner");
    const text = document.getElementById("banner-text");
    if (g && g.authorised) {
      banner.className = "banner banner-active";
      text.textContent = `Disclosure authorised since ${time(g.since)}: you may disclose as if a 64-8 were on record, for this call only.`;
    } else if (g) {
      banner.className = "banner banner-ended";
      const ended = g.grant && g.grant.ended_at ? ` at ${time(g.grant.ended_at)}` : "";
      text.textContent = `Authority ended${ended}: ${g.reason}.`;
    } else {
      banner.className = "banner banner-none";
      text.textContent = "No handed-off call: the usual authority requirements apply.";
    }
    if (!h) {
      replace("card", [el("p", { text: "No hand-off yet." })]);
      return;
    }
    const rep = h.representative;
    replace("card", [
      el("p", { class: "state", text: PROGRESS[h.state] || h.state }),
      facts([
        ["Customer", h.customer.name],
        [h.customer.reference_type === "utr" ? "UTR" : "NINO", h.customer.reference],
        ["Organisation", h.organisation_name],
        ["Representative", `${rep.name} (adviser ${rep.adviser_number})`],
        ["Phone", rep.phone], ["Email", rep.email],
        ["Consent to act", h.consent_to_act ? "yes" : "no: no contact details passed on"],
        ["Issue", h.issue],
        ["Authorisation held", h.authorisation ? `${h.authorisation.type.replace("_", " ")} on ${h.authorisation.date} (ref ${h.authorisation.reference})` : ""],
        ["Call back", `${h.callback.urgent ? "urgent" : "not urgent"}${h.callback.turnaround ? ", " + h.callback.turnaround : ""}`],
        ["VSTRS agent", `${h.agent_name}, SEES ID ${h.agent_sees_id}`],
      ]),
    ]);
  }

  const draw = { agent: drawAgent, specialist: drawSpecialist }[page];
  if (!draw) return;
  let running = false;
  let again = false;
  async function refresh() {
    if (running) { again = true; return; }  // one more pass after this: never miss an event
    running = true;
    try {
      do {
        again = false;
        const response = await fetch(`/console/${page}/state`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.status === 401) { window.location.assign("/console/login"); return; }
        if (response.ok) draw(await response.json());
      } while (again);
    } finally {
      running = false;
    }
  }
  const events = new EventSource("/console/events");
  events.addEventListener("change", refresh);
  events.addEventListener("open", refresh);
  refresh();
  window.setInterval(refresh, 15000);  // a safety net; events do the real work
})();
