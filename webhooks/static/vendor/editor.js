// The flow editor: CodeMirror 6 over a form's <textarea>, bundled by build.sh into
// codemirror/editor.min.js (an IIFE: window.CallflowEditor). No Node at run time.
//
// CallflowEditor.create(textarea, { lint: async (text) => [{line, message}], problems })
// replaces the textarea on screen with an editor (the textarea stays in the form, kept in
// step), numbers the lines and marks each problem in the gutter at its line.
import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { linter, lintGutter, forceLinting } from "@codemirror/lint";

function diagnostics(doc, problems) {
  return problems
    .filter((p) => p.line >= 1)
    .map((p) => {
      const line = doc.line(Math.min(p.line, doc.lines));
      return { from: line.from, to: Math.max(line.to, line.from), severity: "error", message: p.message };
    });
}

function create(textarea, options) {
  const opts = options || {};
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  if (label && !label.id) label.id = `${textarea.id}-label`;
  const extensions = [
    basicSetup,
    yaml(),
    EditorView.lineWrapping,
    // CodeMirror keeps the editor's class attribute itself: ours goes in through it.
    EditorView.editorAttributes.of({ class: "cf-editor" }),
    lintGutter(),
    EditorView.contentAttributes.of({
      "aria-labelledby": label ? label.id : "",
      "aria-describedby": textarea.getAttribute("aria-describedby") || "",
    }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) textarea.value = update.state.doc.toString();
    }),
  ];
  let first = opts.problems || [];
  if (opts.lint || first.length) {
    extensions.push(linter(async (view) => {
      const doc = view.state.doc;
      if (first.length) { const shown = diagnostics(doc, first); first = []; return shown; }
      if (!opts.lint) return [];
      try {
        const problems = await opts.lint(doc.toString());
        if (opts.onProblems) opts.onProblems(problems);
        return diagnostics(view.state.doc, problems);
      } catch (err) {
        return [];
      }
    }, { delay: 600 }));
  }
  const view = new EditorView({
    state: EditorState.create({ doc: textarea.value, extensions }),
  });
  textarea.insertAdjacentElement("afterend", view.dom);
  textarea.hidden = true;
  textarea.setAttribute("aria-hidden", "true");
  textarea.tabIndex = -1;
  if (label) label.addEventListener("click", () => view.focus());
  forceLinting(view);
  return {
    view,
    goToLine(n) {
      const line = view.state.doc.line(Math.max(1, Math.min(n, view.state.doc.lines)));
      view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
      view.focus();
    },
  };
}

window.CallflowEditor = { create };
