// Mermaid diagrams (bundled, no CDN) on pages that only show them: a call's path.
"use strict";
(function () {
  const diagrams = document.querySelectorAll("pre.mermaid");
  if (window.mermaid && diagrams.length) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", state: { useMaxWidth: true } });
    window.mermaid.run({ nodes: diagrams }).then(() => { document.body.dataset.diagrams = "drawn"; });
  }
})();
