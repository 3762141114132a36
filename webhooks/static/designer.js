// The flow designer: Mermaid diagrams (bundled, no CDN) and a softphone that plays a call.
// The softphone is the caller. Each step is played by the service in a sandbox of its own
// (its own store, demo directory and simulated Twilio): this script keeps the caller's
// steps and shows the transcript the sandbox sends back. Nothing reaches the live service.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const diagrams = document.querySelectorAll("pre.mermaid");
  let rendered = Promise.resolve();
  if (window.mermaid && diagrams.length) {
    // Drawn at their natural size: the viewer (diagrams.js) fits, zooms and pans them; a
    // thumbnail is scaled down by its box.
    window.mermaid.initialize({
      startOnLoad: false, securityLevel: "strict", state: { useMaxWidth: false }, flowchart: { useMaxWidth: false },
    });
    rendered = window.mermaid.run({ nodes: diagrams }).then(() => {
      if (window.CallflowDiagrams) window.CallflowDiagrams.attach(document);
      document.body.dataset.diagrams = "drawn";
    });
  }

  const $ = (id) => document.getElementById(id);

  // The editors: line numbers, and each problem marked in the gutter at its line, from the
  // refusal the page was sent with and, for a flow, from the live lint as it changes.
  const editors = {};
  async function lint(name, text) {
    const response = await fetch("/console/designer/lint", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ name: name, source: text }),
    });
    if (!response.ok) return [];
    return (await response.json()).problems;
  }
  function lintStatus(problems) {
    const status = $("source-problems");
    if (!status) return;
    status.textContent = problems.length
      ? `${problems.length} problem${problems.length === 1 ? "" : "s"}: ${problems.map((p) => `line ${p.line}: ${p.message}`).join("; ")}`
      : "No problems found in the flow.";
  }
  function pageProblems(which) {
    return Array.from(document.querySelectorAll(`[data-editor="${which}"][data-line]`))
      .map((a) => ({ line: Number(a.dataset.line), message: a.textContent.replace(/^.*? line \d+: /, "") }));
  }
  if (window.CallflowEditor) {
    const form = $("publish-form");
    const flowName = form ? form.dataset.flow : "new-flow";
    [["source", true], ["tests", false], ["new-source", true], ["new-tests", false]].forEach(([id, flow]) => {
      const area = $(id);
      if (!area) return;
      editors[id] = window.CallflowEditor.create(area, {
        problems: pageProblems(id),
        lint: flow ? (text) => lint(flowName, text) : null,
        onProblems: id === "source" ? lintStatus : null,
      });
    });
    document.querySelectorAll("[data-editor][data-line]").forEach((link) => {
      link.addEventListener("click", (event) => {
        const editor = editors[link.dataset.editor];
        if (!editor) return;
        event.preventDefault();
        editor.goToLine(Number(link.dataset.line));
      });
    });
  }

  const transcript = $("phone-transcript");
  const input = $("phone-input");
  if (!transcript || !input) return;
  let call = null;  // {flow, steps: [...]}

  function line(kind, text) {
    const li = document.createElement("li");
    li.className = `t-${kind.replace(/\s+/g, "-")}`;
    li.textContent = `${kind}: ${text}`;
    transcript.appendChild(li);
  }
  function highlight(flow, state) {
    document.querySelectorAll(".current-state").forEach((n) => n.classList.remove("current-state"));
    const pre = document.querySelector(`pre.mermaid[data-flow="${CSS.escape(flow)}"]`);
    if (!pre || !state) return;
    // The viewer moves a drawn diagram into a box of its own, within the same figure.
    (pre.closest("figure") || pre).querySelectorAll("g.node").forEach((node) => {
      if (node.textContent.trim() === state) node.classList.add("current-state");
    });
  }
  function finish(reason) {
    if (reason) line("call", reason);
    input.hidden = true;
    $("phone-hangup").disabled = true;
    call = null;
  }

  async function play() {
    const response = await fetch("/console/designer/softphone", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ flow: call.flow, steps: call.steps }),
    });
    const answer = await response.json().catch(() => ({}));
    transcript.replaceChildren();
    line("call", `calling flow ${call.flow} (sandbox)`);
    if (!response.ok) { finish(answer.error || `the service answered ${response.status}`); return; }
    answer.transcript.forEach((entry) => line(entry.kind, entry.text));
    if (answer.problem) line("error", answer.problem);
    $("phone-state").textContent = answer.state || "ended";
    highlight(answer.flow, answer.state);
    if (answer.waiting) {
      $("phone-prompt").textContent = answer.prompt || "Waiting for you";
      input.hidden = false;
      $("phone-keys").focus();
    } else {
      finish("the call ended");
    }
  }

  async function take(step) {
    if (!call) return;
    input.hidden = true;
    call.steps.push(step);
    await play();
  }

  $("phone-start").addEventListener("submit", async (event) => {
    event.preventDefault();
    await rendered;
    call = { flow: $("phone-flow").value, steps: [] };
    $("phone-hangup").disabled = false;
    await play();
  });

  input.addEventListener("submit", async (event) => {
    event.preventDefault();
    const keys = $("phone-keys").value.trim();
    const words = $("phone-speech").value.trim();
    $("phone-keys").value = "";
    $("phone-speech").value = "";
    if (words) await take({ say: words });
    else if (keys) await take({ press: keys });
    else await take({ silent: true });
  });

  $("phone-silent").addEventListener("click", () => take({ silent: true }));
  $("phone-hangup").addEventListener("click", async () => {
    if (!call) return;
    await take({ hangup: true });
    finish("");
  });
})();
