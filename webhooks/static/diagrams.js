// Mermaid diagrams (bundled, no CDN), and a viewer that makes each one readable: it opens
// at a readable size (a call's path: fitted to its box, so its end is in view), in a box
// of its own that scrolls; buttons and keys zoom (+ and -), fit (0) and show it at its
// natural size (1); arrow keys and dragging pan. Thumbnails (figure.thumb) are left small.
"use strict";
(function () {
  const MIN = 0.2;
  const MAX = 4;

  function natural(svg) {
    const box = svg.viewBox && svg.viewBox.baseVal;
    if (box && box.width && box.height) return { w: box.width, h: box.height };
    const rect = svg.getBoundingClientRect();
    return { w: rect.width || 800, h: rect.height || 600 };
  }

  function button(text, label) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "govuk-button govuk-button--secondary diagram-tool";
    b.textContent = text;
    if (label) b.setAttribute("aria-label", label);
    return b;
  }

  function view(figure) {
    const svg = figure.querySelector("svg");
    if (!svg || figure.dataset.viewer) return;
    figure.dataset.viewer = "on";
    const size = natural(svg);
    const name = figure.getAttribute("aria-label") || "Diagram";
    const port = document.createElement("div");
    port.className = "diagram-port";
    port.tabIndex = 0;
    port.setAttribute("role", "region");
    port.setAttribute("aria-label", `${name}. Plus and minus zoom, 0 fits, 1 is full size; arrow keys scroll.`);
    svg.parentNode.insertBefore(port, svg);
    port.appendChild(svg);
    svg.style.maxWidth = "none";
    const tools = document.createElement("div");
    tools.className = "govuk-button-group diagram-tools noprint";
    const zoomIn = button("Zoom in");
    const zoomOut = button("Zoom out");
    const fitButton = button("Fit", "Fit the whole diagram in its box");
    const actual = button("Full size", "Show the diagram at full size");
    const shown = document.createElement("span");
    shown.className = "govuk-body-s diagram-scale";
    shown.setAttribute("aria-live", "polite");
    tools.append(zoomIn, zoomOut, fitButton, actual, shown);
    figure.insertBefore(tools, figure.firstChild);

    let scale = 1;
    function apply(next, centre) {
      const before = scale;
      scale = Math.min(MAX, Math.max(MIN, next));
      // Keep the point in the middle of the box where it was.
      const cx = (port.scrollLeft + port.clientWidth / 2) / before;
      const cy = (port.scrollTop + port.clientHeight / 2) / before;
      svg.setAttribute("width", String(Math.round(size.w * scale)));
      svg.setAttribute("height", String(Math.round(size.h * scale)));
      svg.style.width = `${Math.round(size.w * scale)}px`;
      svg.style.height = `${Math.round(size.h * scale)}px`;
      if (centre !== false) {
        port.scrollLeft = cx * scale - port.clientWidth / 2;
        port.scrollTop = cy * scale - port.clientHeight / 2;
      }
      shown.textContent = `Shown at ${Math.round(scale * 100)}%`;
      figure.dataset.scale = scale.toFixed(2);
    }
    function fitScale() {
      const w = Math.max(port.clientWidth - 8, 100);
      const h = Math.max(port.clientHeight - 8, 100);
      return Math.min(1, w / size.w, h / size.h);
    }
    function fit() { apply(fitScale(), false); port.scrollLeft = 0; port.scrollTop = 0; }

    zoomIn.addEventListener("click", () => apply(scale * 1.25));
    zoomOut.addEventListener("click", () => apply(scale / 1.25));
    fitButton.addEventListener("click", fit);
    actual.addEventListener("click", () => apply(1));
    port.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "+" || event.key === "=") apply(scale * 1.25);
      else if (event.key === "-" || event.key === "_") apply(scale / 1.25);
      else if (event.key === "0") fit();
      else if (event.key === "1") apply(1);
      else return;
      event.preventDefault();
    });
    // Drag to pan.
    let drag = null;
    port.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, left: port.scrollLeft, top: port.scrollTop };
      port.classList.add("dragging");
    });
    window.addEventListener("pointermove", (event) => {
      if (!drag) return;
      port.scrollLeft = drag.left - (event.clientX - drag.x);
      port.scrollTop = drag.top - (event.clientY - drag.y);
    });
    window.addEventListener("pointerup", () => { drag = null; port.classList.remove("dragging"); });

    // A call's path opens fitted, its end in view; a flow opens at a readable size: full
    // size, unless the whole of it fits in the box at a size still easy to read.
    if (figure.dataset.start === "fit") fit();
    else apply(Math.max(fitScale(), Math.min(1, 0.85)), false);
  }

  function attach(root) {
    (root || document).querySelectorAll("figure.diagram:not(.thumb)").forEach(view);
  }

  window.CallflowDiagrams = { attach };
  // Pages that only show diagrams (a call's path: data-draw on this script) draw them here;
  // the designer's own script draws its pages' diagrams, then attaches the viewer.
  const me = document.currentScript;
  if (!me || me.dataset.draw !== "yes") return;
  const diagrams = document.querySelectorAll("pre.mermaid");
  if (window.mermaid && diagrams.length) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", state: { useMaxWidth: false } });
    window.mermaid.run({ nodes: diagrams }).then(() => {
      attach(document);
      document.body.dataset.diagrams = "drawn";
    });
  }
})();
