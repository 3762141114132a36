// The flow designer: Mermaid diagrams (bundled, no CDN) and a softphone that plays a call.
// The softphone is the caller; the service plays Twilio's part (signs and sends webhooks);
// this script reads the TwiML back as Twilio would: say, play, pause, gather, redirect, hangup.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const diagrams = document.querySelectorAll("pre.mermaid");
  let rendered = Promise.resolve();
  if (window.mermaid && diagrams.length) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
    rendered = window.mermaid.run({ nodes: diagrams }).then(() => {
      document.body.dataset.diagrams = "drawn";
    });
  }

  const $ = (id) => document.getElementById(id);
  const transcript = $("phone-transcript");
  const input = $("phone-input");
  let call = null;  // {sid, flow, pending: {action, next}}

  function line(kind, text) {
    const li = document.createElement("li");
    li.className = `t-${kind}`;
    li.textContent = `${kind}: ${text}`;
    transcript.appendChild(li);
  }
  function highlight(flow, state) {
    document.querySelectorAll(".current-state").forEach((n) => n.classList.remove("current-state"));
    const pre = document.querySelector(`pre.mermaid[data-flow="${CSS.escape(flow)}"]`);
    if (!pre || !state) return;
    pre.querySelectorAll("g.node").forEach((node) => {
      if (node.textContent.trim() === state) node.classList.add("current-state");
    });
  }

  async function send(url, params) {
    const response = await fetch("/console/designer/softphone", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ url: url, call_sid: call && call.sid, params: params || {} }),
    });
    if (!response.ok) { line("error", `the service answered ${response.status}`); return null; }
    const answer = await response.json();
    if (call) call.sid = answer.call_sid;
    $("phone-state").textContent = answer.state || "ended";
    if (answer.flow) highlight(answer.flow, answer.state);
    return answer;
  }

  function end(reason) {
    line("call", reason);
    input.hidden = true;
    $("phone-hangup").disabled = true;
    call = null;
  }

  // Play a TwiML document from verb `start`; stop at a gather (waiting for the caller).
  async function play(xml, start) {
    const doc = new DOMParser().parseFromString(xml, "text/xml");
    const verbs = Array.from(doc.documentElement ? doc.documentElement.children : []);
    for (let i = start || 0; i < verbs.length; i += 1) {
      const verb = verbs[i];
      const text = (verb.textContent || "").trim();
      if (verb.tagName === "Say") line("hears", text);
      else if (verb.tagName === "Play") line("plays", text);
      else if (verb.tagName === "Pause") continue;
      else if (verb.tagName === "Gather") {
        const prompts = Array.from(verb.children).map((c) => (c.textContent || "").trim()).filter(Boolean);
        prompts.forEach((p) => line("hears", p));
        call.pending = { action: verb.getAttribute("action"), xml: xml, next: i + 1 };
        $("phone-prompt").textContent = prompts.join(" ") || "Waiting for you";
        input.hidden = false;
        $("phone-keys").focus();
        return;
      } else if (verb.tagName === "Redirect") {
        const answer = await send(text, {});
        if (answer) await play(answer.twiml, 0);
        return;
      } else if (verb.tagName === "Hangup" || verb.tagName === "Reject") {
        await send("/voice/status", { CallStatus: "completed" });
        end("the service hung up");
        return;
      } else if (verb.tagName === "Dial" || verb.tagName === "Enqueue") {
        line("call", `would now ${verb.tagName === "Dial" ? "dial" : "queue"}: ${text || "a conference"} (the softphone stops here)`);
        await send("/voice/status", { CallStatus: "completed" });
        end("call ended");
        return;
      }
    }
    await send("/voice/status", { CallStatus: "completed" });
    end("end of the TwiML: the call ends");
  }

  $("phone-start").addEventListener("submit", async (event) => {
    event.preventDefault();
    await rendered;
    transcript.replaceChildren();
    const flow = $("phone-flow").value;
    call = { sid: null, flow: flow, pending: null };
    $("phone-hangup").disabled = false;
    line("call", `calling flow ${flow}`);
    const answer = await send(`/voice/incoming?flow=${encodeURIComponent(flow)}`, {});
    if (answer) await play(answer.twiml, 0);
  });

  input.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!call || !call.pending) return;
    const keys = $("phone-keys").value.trim();
    const words = $("phone-speech").value.trim();
    $("phone-keys").value = "";
    $("phone-speech").value = "";
    input.hidden = true;
    const pending = call.pending;
    call.pending = null;
    let params;
    if (words) { line("says", words); params = { SpeechResult: words, Confidence: "0.9" }; }
    else {
      line("presses", keys);
      const finished = keys.endsWith("#") ? "#" : "";
      params = { Digits: keys.replace(/#$/, ""), FinishedOnKey: finished };
    }
    if (!words && !params.Digits) { await play(pending.xml, pending.next); return; }
    const answer = await send(pending.action, params);
    if (answer) await play(answer.twiml, 0);
  });

  $("phone-silent").addEventListener("click", async () => {
    if (!call || !call.pending) return;
    const pending = call.pending;
    call.pending = null;
    input.hidden = true;
    line("silent", "says nothing");
    await play(pending.xml, pending.next);
  });

  $("phone-hangup").addEventListener("click", async () => {
    if (!call) return;
    await send("/voice/status", { CallStatus: "completed" });
    end("you hung up");
  });
})();
