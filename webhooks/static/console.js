// callflow consoles: draw the live panels from JSON state; refresh on server-sent events.
// Everything shown is set with textContent: nothing from the server is parsed as HTML.
// A redraw keeps focus where it was (the same control, found again by its data-focus
// key), or moves it to the panel's heading and says why; timers tick locally from the
// server's clock, so nothing is fetched to count seconds.
"use strict";
(function () {
  const page = document.body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  let clockOffset = 0;  // server time minus this browser's, in seconds
  const serverNow = () => Date.now() / 1000 + clockOffset;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach((c) => c && node.appendChild(c));
    return node;
  }
  function time(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "";
  }
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
  }
  function facts(pairs) {
    const dl = el("dl", { class: "govuk-summary-list" });
    pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "").forEach(([k, v]) => {
      dl.appendChild(el("div", { class: "govuk-summary-list__row" }, [
        el("dt", { class: "govuk-summary-list__key", text: k }),
        v instanceof Node ? el("dd", { class: "govuk-summary-list__value" }, [v]) : el("dd", { class: "govuk-summary-list__value", text: String(v) }),
      ]));
    });
    return dl;
  }
  function tag(text, colour, id) {
    return el("strong", { class: `govuk-tag${colour ? " govuk-tag--" + colour : ""}`, text: text, id: id });
  }
  // A running timer: "3:12", counted from a server time, ticking every second.
  function timer(since, id, warnAfter) {
    return el("span", { class: "timer", id: id, "data-since": since || "", "data-warn-after": warnAfter || "" });
  }
  function postButton(action, label, kind, extra) {
    return el("form", { method: "post", action: action, class: "inline-form" }, [
      el("input", { type: "hidden", name: "csrf_token", value: csrf }),
      ...Object.entries(extra || {}).map(([n, v]) => el("input", { type: "hidden", name: n, value: v })),
      el("button", { type: "submit", text: label, class: `govuk-button${kind ? " govuk-button--" + kind : ""}`, "data-module": "govuk-button", "data-focus": action + label }),
    ]);
  }
  function para(text, attrs) {
    return el("p", Object.assign({ class: "govuk-body", text: text }, attrs || {}));
  }
  function warning(text, id) {
    return el("div", { class: "govuk-warning-text", id: id }, [
      el("span", { class: "govuk-warning-text__icon", "aria-hidden": "true", text: "!" }),
      el("strong", { class: "govuk-warning-text__text" }, [el("span", { class: "govuk-visually-hidden", text: "Warning" }), document.createTextNode(text)]),
    ]);
  }
  function announce(text) {
    const region = document.getElementById("announce");
    if (region && text) region.textContent = text;
  }
  // Redraw a panel only when what it shows has changed (a key of its content), so
  // nothing flickers and nothing is re-read to a screen reader every refresh. Focus inside
  // the panel stays on the same control (data-focus, id or name), else goes to the
  // panel's heading with a word of why.
  const drawn = {};
  function focusKey(node) {
    if (!node || node === document.body) return "";
    return node.dataset.focus || node.id || (node.name ? `name:${node.name}` : "");
  }
  function replace(id, nodes, key) {
    const target = document.getElementById(id);
    if (!target) return;
    if (key !== undefined && drawn[id] === key) return;
    drawn[id] = key;
    const active = document.activeElement;
    const inside = active && active !== document.body && target.contains(active);
    const wanted = inside ? focusKey(active) : "";
    target.replaceChildren(...nodes);
    if (!inside) return;
    const again = wanted && [...target.querySelectorAll("[data-focus], [id], [name]")].find((n) => focusKey(n) === wanted);
    if (again && !again.disabled) { again.focus(); return; }
    const section = target.closest("section");
    const heading = section && section.querySelector("h2");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
      announce(`${heading.textContent} changed.`);
    }
  }
  // Every timer on the page, each second; a hold warning once it is due.
  const warned = new Set();
  function tick() {
    const now = serverNow();
    document.querySelectorAll(".timer[data-since]").forEach((node) => {
      const since = Number(node.dataset.since);
      if (!since) { node.textContent = ""; return; }
      const until = Number(node.dataset.until || 0);
      const elapsed = (until || now) - since;
      node.textContent = node.dataset.countdown ? clock(Number(node.dataset.countdown) - now) : clock(elapsed);
      const warnAfter = Number(node.dataset.warnAfter || 0);
      const target = node.dataset.warnTarget && document.getElementById(node.dataset.warnTarget);
      if (warnAfter && target) {
        const over = !until && elapsed >= warnAfter;
        target.hidden = !over;
        if (over && !warned.has(node.dataset.warnKey)) {
          warned.add(node.dataset.warnKey);
          announce(target.textContent.replace(/^!\s*Warning/, "").trim());
        }
      }
    });
  }

  // ---------------------------------------------------------------- the agent

  const PROGRESS = {
    requested: "Requested", ringing: "Ringing the team", checking: "Specialist keying your SEES ID",
    accepted: "Accepted: specialist joining", briefing: "Specialist on the line: brief them, then hand over",
    taken_over: "Handed over: the specialist has the call", ended: "Call ended",
    failed: "Not handed off",
  };
  const PROGRESS_COLOUR = {
    requested: "blue", ringing: "blue", checking: "blue", accepted: "turquoise", briefing: "turquoise",
    taken_over: "green", ended: "grey", failed: "red",
  };
  const REASONS = {
    no_answer: "no answer", busy: "the team was busy", failed: "the call to the team failed",
    declined: "the specialist declined", sees_id_mismatch: "the SEES ID check failed",
    cancelled: "you cancelled it", specialist_hung_up: "the specialist hung up",
    specialist_gone: "the specialist left during the brief",
    caller_hung_up: "the caller hung up", agent_left: "you left the call",
  };
  const LANGUAGES = { "en-GB": "English", "cy-GB": "Welsh (Cymraeg): serve the call in Welsh" };
  const CALL_STATES = {
    waiting: "Waiting", with_agent: "With you", transferring: "Handing off",
    handed_off: "Handed off", agent_left: "You have left", no_agent: "No agent", ended: "Ended",
  };
  const STATE_COLOUR = { available: "green", away: "grey", ringing: "blue", on_call: "blue", after_call: "yellow" };

  // The hand-off form belongs to one call: cleared when another call comes, closed when
  // there is none, read-only (what was sent) while a hand-off goes on, and kept as a
  // draft on the call as the agent types.
  function formFields(form) {
    return [...form.querySelectorAll("input, textarea, select")].filter((i) => i.type !== "hidden");
  }
  function setFormCall(callSid, locked, sent) {
    const form = document.getElementById("handoff-form");
    if (!form) return;
    const fields = document.getElementById("handoff-fields");
    if (form.dataset.call !== (callSid || "")) {
      formFields(form).forEach((input) => {
        if (input.type === "checkbox") input.checked = false;
        else if (input.tagName === "SELECT") input.value = input.name === "auth_type" ? "signed" : "";
        else input.value = "";
        input.removeAttribute("aria-invalid");
      });
      form.querySelectorAll(".govuk-error-message").forEach((node) => node.remove());
      form.querySelectorAll(".govuk-form-group--error").forEach((node) => node.classList.remove("govuk-form-group--error"));
      const summary = document.querySelector(".govuk-error-summary");
      if (summary) summary.remove();
      form.dataset.call = callSid || "";
      form.dataset.filledFrom = "";
      document.getElementById("form-call-sid").value = callSid || "";
    }
    const wasLocked = form.dataset.locked === "yes";
    form.dataset.locked = locked ? "yes" : "";
    if (locked && sent) fill(form, sent, true);
    if (fields) fields.disabled = !callSid || locked;
    document.getElementById("form-closed").hidden = Boolean(callSid);
    document.getElementById("form-sent").hidden = !locked;
    if (wasLocked && !locked && callSid) announce("The hand-off form is open again: change the details, or hand off again.");
  }
  function fill(form, values, always) {
    Object.entries(values).forEach(([name, value]) => {
      const input = form.elements.namedItem(name);
      if (!input || input.type === "hidden") return;
      if (input.type === "checkbox") { input.checked = value === "yes"; return; }
      if (input.tagName === "SELECT" && name === "team") {
        const option = [...input.options].find((o) => o.value === value);
        input.value = option && !option.disabled ? value : "";  // a closed team is never chosen
        return;
      }
      if (always || !input.value) input.value = value || "";
    });
  }
  // The draft: sent a moment after the agent stops typing (and before the page goes).
  let draftTimer = null;
  function saveDraft() {
    const form = document.getElementById("handoff-form");
    if (!form || !form.dataset.call || form.dataset.locked === "yes") return;
    const body = { call_sid: form.dataset.call };
    formFields(form).forEach((i) => { body[i.name] = i.type === "checkbox" ? (i.checked ? "yes" : "") : i.value; });
    const status = document.getElementById("draft-status");
    fetch(form.dataset.draftUrl, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify(body),
    }).then((r) => { if (status) status.textContent = r.ok ? `Draft kept at ${time(serverNow())}.` : "The draft could not be kept: keep this page open."; })
      .catch(() => { if (status) status.textContent = "The draft could not be kept: keep this page open."; });
  }
  function watchDraft() {
    const form = document.getElementById("handoff-form");
    if (!form) return;
    form.addEventListener("input", () => { clearTimeout(draftTimer); draftTimer = setTimeout(saveDraft, 600); });
    form.addEventListener("change", () => { clearTimeout(draftTimer); draftTimer = setTimeout(saveDraft, 200); });
    window.addEventListener("pagehide", () => { if (draftTimer) { clearTimeout(draftTimer); saveDraft(); } });
  }

  let lastCall = null;
  let lastProgress = null;
  let lastState = null;
  function drawPresence(state) {
    const p = state.presence;
    const availability = document.getElementById("availability");
    if (!availability) return;
    availability.textContent = p.label + (p.state === "away" && p.reason_label ? `: ${p.reason_label}` : "");
    availability.className = `govuk-tag govuk-tag--${STATE_COLOUR[p.state] || "grey"}`;
    const timerNode = document.getElementById("state-timer");
    timerNode.dataset.since = p.state === "after_call" && p.until ? "" : (p.since || "");
    timerNode.dataset.countdown = "";
    if (p.state === "after_call" && p.until) { timerNode.dataset.since = p.since; timerNode.dataset.countdown = p.until; }
    const awayAfter = document.getElementById("away-after");
    awayAfter.hidden = !p.away_after;
    awayAfter.textContent = p.away_after ? `Away after this call (${p.away_after_label}).` : "";
    const onCall = p.state === "ringing" || p.state === "on_call";
    document.getElementById("go-available-form").hidden = !(p.state === "away" || p.away_after);
    document.getElementById("go-available").textContent = p.away_after ? "Stay available after this call" : "Available";
    document.getElementById("go-away-form").hidden = p.state === "away" || Boolean(p.away_after);
    document.getElementById("go-away").textContent = onCall ? "Away after this call" : "Away";
    document.getElementById("ready-form").hidden = p.state !== "after_call";
    if (lastState !== null && lastState !== p.state) announce(`You are now: ${p.label}.`);
    lastState = p.state;
  }
  function drawAgent(state) {
    drawPresence(state);
    const call = state.call;
    const callSid = call && !call.ended_at ? call.call_sid : "";
    const h = state.handoff;
    const locked = Boolean(h && ["requested", "ringing", "checking", "accepted", "briefing", "taken_over"].includes(h.state));
    setFormCall(callSid, locked, h ? h.sent : null);
    if (!call) {
      replace("call", [para(state.after_call ? "The call is over for you: its after-call work is open." : "No call in hand.")], state.after_call ? "after" : "none");
    } else {
      const key = JSON.stringify([call.call_sid, call.state, call.caller, call.language, call.relay]);
      replace("call", [
        el("p", { class: "govuk-body state-line" }, [tag(CALL_STATES[call.state] || call.state.replace("_", " "), call.state === "with_agent" ? "green" : "blue")]),
        facts([
          ["On the call", timer(call.connected_at, "call-timer")],
          ["Organisation", call.caller.organisation_name],
          ["Adviser", `${call.caller.adviser_name} (adviser ${call.caller.adviser_number})`],
          ["Verified", `by PIN and a security question (${call.caller.verified_by})`],
          ["Consent to act", call.caller.consent_to_act ? "Yes" : "No"],
          ["Language", LANGUAGES[call.language] || call.language],
          ["Relay UK", call.relay ? "Yes: a relay assistant is on the line and reads what you say" : ""],
        ]),
      ], key);
    }
    if (callSid !== lastCall) {
      if (call && callSid) announce(`A call from ${call.caller.organisation_name}, adviser ${call.caller.adviser_name}, is with you. The hand-off form is for this call.`);
      else if (lastCall && state.after_call) announce("The call is over for you: after-call work is open, with the form as you left it.");
      else if (lastCall) announce("The call has ended. The hand-off form is closed.");
      lastCall = callSid;
    }
    drawProgress(state, h, callSid);
    drawAfterCall(state);
    drawLists(state);
  }
  function drawProgress(state, h, callSid) {
    if (!h) {
      replace("progress", [para("No hand-off.")], "none");
      if (lastProgress === null) lastProgress = "";
      return;
    }
    const label = PROGRESS[h.state] || h.state;
    const reason = h.reason ? ` (${REASONS[h.reason] || h.reason})` : "";
    const held = ["requested", "ringing", "checking", "accepted", "briefing"].includes(h.state);
    const holdWarning = warning(`The caller has been on hold over ${Math.round(state.hold_warning_seconds / 60)} minutes: tell them what is happening, or cancel the hand-off.`, "hold-warning");
    holdWarning.hidden = true;
    const holdTimer = timer(h.held_since, "hold-timer");
    if (held) Object.assign(holdTimer.dataset, { warnAfter: state.hold_warning_seconds, warnTarget: "hold-warning", warnKey: h.id });
    else holdTimer.dataset.until = h.held_until || "";
    const nodes = [
      el("p", { class: "govuk-body state-line" }, [tag(label + reason, PROGRESS_COLOUR[h.state], "progress-state")]),
      facts([
        ["Team", h.team_name], ["Customer", `${h.customer.name} (${(h.customer.reference_type || "").toUpperCase()} ${h.customer.reference})`],
        ["Caller on hold", held ? holdTimer : ""],
        ["In this step", held ? timer(h.step_since, "step-timer") : ""],
        ["Taken by", h.taken_by ? h.taken_by.name : ""],
      ]),
      holdWarning,
    ];
    if (h.handed_over) {
      const over = h.handed_over;
      nodes.push(el("div", { class: "govuk-inset-text", id: "handed-over" }, [document.createTextNode(
        `Handed to ${over.team_name}${over.taken_by ? " (" + over.taken_by + ")" : ""} at ${time(over.at)}; ` +
        (over.authority_live ? "the specialist's authority is live." : "the call is over and the authority has ended."))]));
    }
    const base = `/console/agent/handoff/${h.id}`;
    const buttons = el("div", { class: "govuk-button-group" });
    if (held) buttons.appendChild(postButton(`${base}/cancel`, "Cancel the hand-off", "secondary"));
    if (h.state === "briefing") buttons.appendChild(postButton(`${base}/complete`, "Hand over and leave the call"));
    if (h.state === "failed" && callSid === h.call_sid) {
      if (h.team_open) {
        nodes.push(para("The details are kept in the form: try again, or change them and hand off."));
        buttons.appendChild(postButton(`${base}/retry`, `Try ${h.team_name} again`));
      } else {
        nodes.push(para(`${h.team_name} is closed now: choose another team in the form, or record what you agreed with the caller.`));
      }
    }
    nodes.push(buttons);
    replace("progress", nodes, JSON.stringify([h.id, h.state, h.reason, callSid, h.team_open, h.handed_over, h.taken_by]));
    const progressKey = `${h.id}:${h.state}`;
    if (progressKey !== lastProgress && lastProgress !== null) announce(`Hand-off to ${h.team_name}: ${label}${reason}.`);
    lastProgress = progressKey;
  }
  function drawAfterCall(state) {
    const panel = document.getElementById("after-call-panel");
    if (!panel) return;
    const a = state.after_call;
    panel.hidden = !a;
    if (!a) { replace("after-call", [], "none"); return; }
    const callField = document.getElementById("outcome-call-sid");
    if (callField.value !== a.call.call_sid) {
      // A new call's after-call work: start from the outcome the service recorded.
      callField.value = a.call.call_sid;
      const guess = a.call.outcome ? a.call.outcome.code : "";
      document.querySelectorAll('#outcome-form input[name="outcome"]').forEach((r) => { r.checked = r.value === guess; });
      document.getElementById("notes").value = a.call.outcome ? a.call.outcome.notes || "" : "";
    }
    const d = a.draft || {};
    const h = a.handoff;
    const ends = timer(a.since, "wrap-timer");
    ends.dataset.countdown = a.until || "";
    const nodes = [
      facts([
        ["Time left", a.until ? ends : ""],
        ["Organisation", a.call.caller.organisation_name],
        ["Adviser", `${a.call.caller.adviser_name} (adviser ${a.call.caller.adviser_number})`],
        ["Call", `${CALL_STATES[a.call.state] || a.call.state}${a.call.end_reason ? " (" + a.call.end_reason.replace(/_/g, " ") + ")" : ""}`],
      ]),
    ];
    if (h && h.handed_over) {
      nodes.push(el("div", { class: "govuk-inset-text" }, [document.createTextNode(
        `Handed to ${h.handed_over.team_name} at ${time(h.handed_over.at)}; ` +
        (h.handed_over.authority_live ? "the specialist's authority is live." : "the call is over and the authority has ended."))]));
    } else if (h) {
      nodes.push(para(`Hand-off to ${h.team_name}: ${PROGRESS[h.state] || h.state}${h.reason ? " (" + (REASONS[h.reason] || h.reason) + ")" : ""}.`));
    }
    const form = [["Team", d.team], ["Customer", d.customer_name], ["Reference", d.reference], ["Issue", d.issue], ["Authorisation reference", d.auth_reference], ["Turnaround", d.turnaround]];
    if (form.some((f) => f[1])) {
      nodes.push(el("h3", { class: "govuk-heading-s", text: "Your notes from the form" }), facts(form));
    }
    replace("after-call", nodes, JSON.stringify([a.call.call_sid, a.call.state, a.until, d, h && h.state, h && h.handed_over]));
  }
  function drawLists(state) {
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
      el("td", { class: "govuk-table__cell", text: r.outcome || "" }),
      el("td", { class: "govuk-table__cell govuk-table__cell--numeric", text: String(r.handoffs) }),
    ]));
    replace("history", rows.length ? [el("table", { class: "govuk-table" }, [
      el("caption", { class: "govuk-table__caption govuk-visually-hidden", text: "Your recent calls, newest first" }),
      el("thead", { class: "govuk-table__head" }, [el("tr", { class: "govuk-table__row" }, ["Time", "Organisation", "Adviser", "State", "Outcome", "Hand-offs"].map((t) => el("th", { scope: "col", class: `govuk-table__header${t === "Hand-offs" ? " govuk-table__header--numeric" : ""}`, text: t })))]),
      el("tbody", { class: "govuk-table__body" }, rows),
    ])] : [para("No calls yet.")], JSON.stringify(state.history));
  }

  // ---------------------------------------------------------------- the specialist

  const CARD_STATES = {
    requested: "Requested", ringing: "Ringing your phone", checking: "Key the agent's SEES ID",
    accepted: "SEES ID confirmed: joining", briefing: "The agent is briefing you",
    taken_over: "You have the call", ended: "Call ended", failed: "Did not happen",
  };
  let lastBanner = null;
  function card(h) {
    const rep = h.adviser || {};
    const authorised = h.authorisation ? `${h.authorisation.type === "signed" ? "Signed" : "Recorded oral"}, given ${new Date(h.authorisation.date).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" })} (ref ${h.authorisation.reference})` : "";
    return facts([
      ["Customer", h.customer ? h.customer.name : ""],
      [h.customer && h.customer.reference_type === "utr" ? "UTR" : "National Insurance number", h.customer ? h.customer.reference : ""],
      ["Matter", h.issue],
      ["Why a specialist", h.need ? h.need.label + (h.need.detail ? `: ${h.need.detail}` : "") : ""],
      ["Organisation", h.organisation_name],
      ["Language", LANGUAGES[h.language] || h.language],
      ["Relay UK", h.relay ? "Yes: a relay assistant is on the line and hears what you disclose" : ""],
      ["Adviser", rep.name ? `${rep.name} (adviser ${rep.adviser_number})` : ""],
      ["Phone", rep.phone], ["Email", rep.email],
      ["Consent to act", h.customer ? (h.consent_to_act ? "Yes" : "No: no contact details passed on") : ""],
      ["Authorisation held", authorised],
      ["Call back", h.callback ? `${h.callback.urgent ? "Urgent" : "Not urgent"}${h.callback.turnaround ? ", " + h.callback.turnaround : ""}` : ""],
      ["VSTRS agent", h.agent_sees_id ? `${h.agent_name}, SEES ID ${h.agent_sees_id}` : `${h.agent_name}: key the SEES ID they give you`],
    ]);
  }
  function drawSpecialistState(a) {
    const availability = document.getElementById("availability");
    if (!availability || !a) return;
    availability.textContent = a.label;
    availability.className = `govuk-tag govuk-tag--${STATE_COLOUR[a.state] || "grey"}`;
    const after = document.getElementById("availability-after");
    after.hidden = !a.after;
    after.textContent = a.after || "";
  }
  function drawSpecialist(state) {
    drawSpecialistState(state.availability);
    const b = state.banner;
    const banner = document.getElementById("banner");
    const shown = banner.dataset.handoff || "";
    // A live banner is for one call: a different call's never replaces it while it lasts.
    banner.dataset.handoff = b.handoff_id || "";
    document.getElementById("banner-text").textContent = b.text;
    banner.className = `disclosure disclosure-${b.kind}`;
    const live = document.getElementById("banner-live");
    live.hidden = b.kind !== "active";
    document.getElementById("banner-timer").dataset.since = b.kind === "active" ? (b.since || "") : "";
    const bannerKey = `${b.kind}:${b.handoff_id || ""}`;
    if (lastBanner !== null && bannerKey !== lastBanner) announce(b.text);
    if (shown && b.handoff_id && shown !== b.handoff_id) banner.dataset.replaced = (Number(banner.dataset.replaced || 0) + 1).toString();
    lastBanner = bannerKey;
    const h = state.handoff;
    if (!h) {
      replace("card", [para("No hand-off for you now.")], "none");
    } else {
      replace("card", [
        el("p", { class: "govuk-body state-line" }, [tag(CARD_STATES[h.state] || h.state, PROGRESS_COLOUR[h.state], "card-state")]),
        card(h),
      ], JSON.stringify(h));
    }
    const wrap = (state.wrap_up || []).map((w) => el("div", { class: "wrap-card", "data-handoff": w.handoff.id }, [
      el("p", { class: "govuk-body govuk-!-font-weight-bold", text: `Authority ended at ${time(w.ended_at)}. Shown read-only until ${time(w.until)}.` }),
      w.handoff.customer ? card(w.handoff) : para(w.handoff.withheld || ""),
    ]));
    replace("wrap-up", wrap.length ? wrap : [para("Nothing to wrap up.")], JSON.stringify((state.wrap_up || []).map((w) => [w.handoff.id, w.until])));
    const rows = (state.team || []).map((t) => el("tr", { class: "govuk-table__row" }, [
      el("td", { class: "govuk-table__cell", text: time(t.requested_at) }),
      el("td", { class: "govuk-table__cell", text: t.label + (t.language !== "en-GB" ? `, ${(LANGUAGES[t.language] || t.language).split(":")[0]}` : "") + (t.relay ? ", Relay UK" : "") }),
      el("td", { class: "govuk-table__cell", text: t.state_text }),
      el("td", { class: "govuk-table__cell", text: t.mine ? "You" : (t.taken_by || (t.ringing ? `Ringing ${t.ringing}` : "Nobody yet")) }),
      el("td", { class: "govuk-table__cell actions" }, [t.can_take ? postButton(`/console/specialist/handoff/${t.id}/take`, "Take this hand-off", "", {}) : null]),
    ]));
    replace("team", rows.length ? [el("table", { class: "govuk-table" }, [
      el("caption", { class: "govuk-table__caption govuk-visually-hidden", text: "Your team's hand-offs under way, oldest first" }),
      el("thead", { class: "govuk-table__head" }, [el("tr", { class: "govuk-table__row" }, ["Since", "From", "State", "Who has it", "Action"].map((t) => el("th", { scope: "col", class: "govuk-table__header", text: t })))]),
      el("tbody", { class: "govuk-table__body" }, rows),
    ])] : [para("None under way.")], JSON.stringify(state.team || []));
  }

  const draw = { agent: drawAgent, specialist: drawSpecialist }[page];
  if (!draw) return;
  if (page === "agent") watchDraft();
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
        if (response.ok) {
          const state = await response.json();
          clockOffset = state.now - Date.now() / 1000;
          draw(state);
          tick();
        }
      } while (again);
    } finally {
      running = false;
    }
  }
  const events = new EventSource("/console/events");
  events.addEventListener("change", refresh);
  events.addEventListener("open", refresh);
  refresh();
  window.setInterval(tick, 1000);
  window.setInterval(refresh, 15000);  // a safety net; events do the real work
})();
