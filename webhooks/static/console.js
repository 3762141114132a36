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
    const dl = el("dl", { class: "govuk-summary-list" });
    pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "").forEach(([k, v]) => {
      dl.appendChild(el("div", { class: "govuk-summary-list__row" }, [
        el("dt", { class: "govuk-summary-list__key", text: k }),
        el("dd", { class: "govuk-summary-list__value", text: String(v) }),
      ]));
    });
    return dl;
  }
  function tag(text, colour, id) {
    const attrs = { class: `govuk-tag${colour ? " govuk-tag--" + colour : ""}`, text: text };
    if (id) attrs.id = id;
    return el("strong", attrs);
  }
  function postButton(action, label, kind) {
    return el("form", { method: "post", action: action, class: "inline-form" }, [
      el("input", { type: "hidden", name: "csrf_token", value: csrf }),
      el("button", { type: "submit", text: label, class: `govuk-button${kind ? " govuk-button--" + kind : ""}`, "data-module": "govuk-button" }),
    ]);
  }
  function para(text, attrs) {
    return el("p", Object.assign({ class: "govuk-body", text: text }, attrs || {}));
  }
  // Redraw a panel only when what it shows has changed (a key of its content), so
  // nothing flickers and nothing is re-read to a screen reader every refresh.
  const drawn = {};
  function replace(id, nodes, key) {
    const target = document.getElementById(id);
    if (!target) return;
    if (key !== undefined && drawn[id] === key) return;
    drawn[id] = key;
    target.replaceChildren(...nodes);
  }
  function announce(text) {
    const region = document.getElementById("announce");
    if (region && text) region.textContent = text;
  }

  const PROGRESS = {
    requested: "Requested", ringing: "Ringing the team", checking: "Specialist checking your SEES ID",
    accepted: "Accepted: specialist joining", briefing: "Specialist on the line: brief them, then hand over",
    taken_over: "Handed over: the specialist has the call", ended: "Call ended",
    failed: "Not transferred",
  };
  const PROGRESS_COLOUR = {
    requested: "blue", ringing: "blue", checking: "blue", accepted: "turquoise", briefing: "turquoise",
    taken_over: "green", ended: "grey", failed: "red",
  };
  const REASONS = {
    no_answer: "no answer", busy: "the team was busy", failed: "the call to the team failed",
    declined: "the specialist declined", sees_id_mismatch: "the SEES ID check failed",
    cancelled: "you cancelled it", specialist_hung_up: "the specialist hung up",
    caller_hung_up: "the caller hung up", agent_left: "you left the call",
  };
  const LANGUAGES = { "en-GB": "English", "cy-GB": "Welsh (Cymraeg): serve the call in Welsh" };
  const CALL_STATES = {
    waiting: "Waiting", ringing_agent: "Ringing you", with_agent: "With you", transferring: "Transferring",
    handed_off: "Handed off", agent_left: "You have left", ended: "Ended",
  };

  // The hand-off form belongs to one call: cleared when another call comes, closed when
  // there is none, and filled again from a transfer that did not happen.
  function setFormCall(callSid) {
    const form = document.getElementById("handoff-form");
    if (!form) return;
    const fields = document.getElementById("handoff-fields");
    const closed = document.getElementById("form-closed");
    if (form.dataset.call !== (callSid || "")) {
      form.querySelectorAll("input, textarea, select").forEach((input) => {
        if (input.type === "hidden") return;
        if (input.type === "checkbox") input.checked = false;
        else if (input.tagName === "SELECT") input.selectedIndex = 0;
        else input.value = "";
        input.removeAttribute("aria-invalid");
      });
      form.querySelectorAll(".govuk-error-message").forEach((node) => node.remove());
      form.querySelectorAll(".govuk-form-group--error").forEach((node) => node.classList.remove("govuk-form-group--error"));
      const summary = document.getElementById("error-summary");
      if (summary) summary.remove();
      form.dataset.call = callSid || "";
      form.dataset.filledFrom = "";
      document.getElementById("form-call-sid").value = callSid || "";
    }
    if (fields) fields.disabled = !callSid;
    if (closed) closed.hidden = Boolean(callSid);
  }
  function fillFrom(h) {
    const form = document.getElementById("handoff-form");
    if (!form || form.dataset.filledFrom === h.id || form.dataset.call !== h.call_sid) return;
    form.dataset.filledFrom = h.id;
    const given = (h.authorisation && h.authorisation.date ? h.authorisation.date : "").split("-");
    const values = {
      team: h.team, customer_name: h.customer.name, reference: h.customer.reference, issue: h.issue,
      auth_type: h.authorisation ? h.authorisation.type : "", auth_reference: h.authorisation ? h.authorisation.reference : "",
      auth_year: given[0] || "", auth_month: String(Number(given[1] || "") || ""), auth_day: String(Number(given[2] || "") || ""),
      turnaround: h.callback ? h.callback.turnaround : "",
    };
    Object.entries(values).forEach(([name, value]) => {
      const input = form.elements.namedItem(name);
      if (input && !input.value) input.value = value || "";
    });
    const urgent = form.elements.namedItem("urgent");
    if (urgent && h.callback) urgent.checked = Boolean(h.callback.urgent);
  }

  let lastCall = null;
  let lastProgress = null;
  function drawAgent(state) {
    const availability = document.getElementById("availability");
    if (availability) {
      const on = state.availability === "available";
      availability.textContent = on ? "Available" : "Away";
      availability.className = `govuk-tag ${on ? "govuk-tag--green" : "govuk-tag--grey"}`;
      document.getElementById("go-available").hidden = on;
      document.getElementById("go-away").hidden = !on;
    }
    const call = state.call;
    const callSid = call && !call.ended_at ? call.call_sid : "";
    setFormCall(callSid);
    if (!call) {
      replace("call", [para("No call in hand.")], "none");
    } else {
      // The time on the call is not part of the key: it changes every second.
      const key = JSON.stringify([call.call_sid, call.state, call.caller, call.language, call.relay]);
      replace("call", [
        el("p", { class: "govuk-body state-line" }, [tag(CALL_STATES[call.state] || call.state.replace("_", " "), call.state === "with_agent" ? "green" : "blue")]),
        facts([
          ["Organisation", call.caller.organisation_name],
          ["Adviser", `${call.caller.adviser_name} (adviser ${call.caller.adviser_number})`],
          ["Verified", `by PIN and a security question (${call.caller.verified_by})`],
          ["Consent to act", call.caller.consent_to_act ? "Yes" : "No"],
          ["Language", LANGUAGES[call.language] || call.language],
          ["Relay UK", call.relay ? "Yes: a relay assistant is on the line and reads what you say" : ""],
          ["Since", time(call.waiting_since)],
        ]),
      ], key);
    }
    if (callSid !== lastCall) {
      if (call && callSid) announce(`A call from ${call.caller.organisation_name}, adviser ${call.caller.adviser_name}, is with you. The hand-off form is clear for this call.`);
      else if (lastCall) announce("The call has ended. The hand-off form is closed.");
      lastCall = callSid;
    }
    const h = state.handoff;
    if (!h) {
      replace("progress", [para("No transfer.")], "none");
    } else {
      const label = PROGRESS[h.state] || h.state;
      const reason = h.reason ? ` (${REASONS[h.reason] || h.reason})` : "";
      const nodes = [
        el("p", { class: "govuk-body state-line" }, [tag(label + reason, PROGRESS_COLOUR[h.state], "progress-state")]),
        facts([["Team", h.team_name], ["Customer", `${h.customer.name} (${h.customer.reference_type.toUpperCase()} ${h.customer.reference})`]]),
      ];
      const base = `/console/agent/handoff/${h.id}`;
      const buttons = el("div", { class: "govuk-button-group" });
      if (["requested", "ringing", "checking", "accepted", "briefing"].includes(h.state)) {
        buttons.appendChild(postButton(`${base}/cancel`, "Cancel the transfer", "secondary"));
      }
      if (h.state === "briefing") buttons.appendChild(postButton(`${base}/complete`, "Hand over and leave the call"));
      if (h.state === "failed" && callSid === h.call_sid) {
        nodes.push(para("The details are kept in the form: try again, or change them and transfer."));
        buttons.appendChild(postButton(`${base}/retry`, `Try ${h.team_name} again`));
        fillFrom(h);
      }
      nodes.push(buttons);
      replace("progress", nodes, JSON.stringify([h.id, h.state, h.reason, callSid]));
      const progressKey = `${h.id}:${h.state}`;
      if (progressKey !== lastProgress && lastProgress !== null) announce(`Transfer to ${h.team_name}: ${label}${reason}.`);
      lastProgress = progressKey;
    }
    if (!h && lastProgress === null) lastProgress = "";
    const waiting = (state.callbacks || []).map((c, i) => el("tr", { class: "govuk-table__row" }, [
      el("td", { class: "govuk-table__cell govuk-table__cell--numeric", text: String(i + 1) }),
      el("td", { class: "govuk-table__cell", text: time(c.arrived_at) }),
      el("td", { class: "govuk-table__cell", text: c.organisation_name }),
      el("td", { class: "govuk-table__cell", text: c.adviser_name }),
      el("td", { class: "govuk-table__cell", text: (LANGUAGES[c.language] || c.language).split(":")[0] + (c.relay ? ", Relay UK" : "") }),
      el("td", { class: "govuk-table__cell", text: c.status_text + (c.next_attempt_at ? ` (${time(c.next_attempt_at)})` : "") }),
    ]));
    replace("callbacks", waiting.length ? [el("table", { class: "govuk-table" }, [
      el("caption", { class: "govuk-table__caption govuk-visually-hidden", text: "Call-backs waiting, oldest first" }),
      el("thead", { class: "govuk-table__head" }, [el("tr", { class: "govuk-table__row" }, ["Place", "First rang", "Organisation", "Adviser", "Language", "Status"].map((t) => el("th", { scope: "col", class: `govuk-table__header${t === "Place" ? " govuk-table__header--numeric" : ""}`, text: t })))]),
      el("tbody", { class: "govuk-table__body" }, waiting),
    ]), ...(state.callbacks_open > waiting.length ? [para(`The first ${waiting.length} of ${state.callbacks_open}.`)] : [])] : [para("None waiting.")], JSON.stringify(state.callbacks || []) + state.callbacks_open);
    const rows = state.history.map((r) => el("tr", { class: "govuk-table__row" }, [
      el("td", { class: "govuk-table__cell", text: time(r.started) }), el("td", { class: "govuk-table__cell", text: r.organisation_name }),
      el("td", { class: "govuk-table__cell", text: r.adviser_name }), el("td", { class: "govuk-table__cell", text: CALL_STATES[r.state] || r.state.replace("_", " ") }),
      el("td", { class: "govuk-table__cell govuk-table__cell--numeric", text: String(r.handoffs) }),
    ]));
    replace("history", rows.length ? [el("table", { class: "govuk-table" }, [
      el("caption", { class: "govuk-table__caption govuk-visually-hidden", text: "Your recent calls, newest first" }),
      el("thead", { class: "govuk-table__head" }, [el("tr", { class: "govuk-table__row" }, ["Time", "Organisation", "Adviser", "State", "Hand-offs"].map((t) => el("th", { scope: "col", class: `govuk-table__header${t === "Hand-offs" ? " govuk-table__header--numeric" : ""}`, text: t })))]),
      el("tbody", { class: "govuk-table__body" }, rows),
    ])] : [para("No calls yet.")], JSON.stringify(state.history));
  }

  let lastBanner = null;
  function drawSpecialist(state) {
    const h = state.handoff;
    const g = state.grant;
    const banner = document.getElementById("banner");
    const text = document.getElementById("banner-text");
    let kind = "none";
    if (g && g.authorised) {
      kind = "active";
      text.textContent = `Disclosure authorised since ${time(g.since)}: you may disclose as if a 64-8 were on record, for this call only.`
        + (g.grant && g.grant.relay ? " A Relay UK assistant is on the line and hears what you say." : "");
    } else if (g) {
      kind = "ended";
      const ended = g.grant && g.grant.ended_at ? ` at ${time(g.grant.ended_at)}` : "";
      text.textContent = `Authority ended${ended}: ${g.reason}.`;
    } else {
      text.textContent = "No handed-off call: the usual authority requirements apply.";
    }
    banner.className = `disclosure disclosure-${kind}`;
    const bannerKey = `${kind}:${g ? g.grant && g.grant.id : ""}`;
    if (lastBanner !== null && bannerKey !== lastBanner) announce(text.textContent);
    lastBanner = bannerKey;
    if (!h) {
      replace("card", [para("No hand-off yet.")], "none");
      return;
    }
    const rep = h.representative;
    replace("card", [
      el("p", { class: "govuk-body state-line" }, [tag(PROGRESS[h.state] || h.state, PROGRESS_COLOUR[h.state])]),
      facts([
        ["Customer", h.customer.name],
        [h.customer.reference_type === "utr" ? "UTR" : "National Insurance number", h.customer.reference],
        ["Organisation", h.organisation_name],
        ["Language", LANGUAGES[h.language] || h.language],
        ["Relay UK", h.relay ? "Yes: a relay assistant is on the line and hears what you disclose" : ""],
        ["Representative", `${rep.name} (adviser ${rep.adviser_number})`],
        ["Phone", rep.phone], ["Email", rep.email],
        ["Consent to act", h.consent_to_act ? "Yes" : "No: no contact details passed on"],
        ["Issue", h.issue],
        ["Authorisation held", h.authorisation ? `${h.authorisation.type === "signed" ? "Signed" : "Recorded oral"}, given ${new Date(h.authorisation.date).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" })} (ref ${h.authorisation.reference})` : ""],
        ["Call back", `${h.callback.urgent ? "Urgent" : "Not urgent"}${h.callback.turnaround ? ", " + h.callback.turnaround : ""}`],
        ["VSTRS agent", `${h.agent_name}, SEES ID ${h.agent_sees_id}`],
      ]),
    ], JSON.stringify(h));
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
