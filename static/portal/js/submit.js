/* Submit page: templates, and two-way sync between the common fields and the JSON editor. */
(function () {
  "use strict";
  const Flare = window.Flare;
  const templates = Flare.json("intent-templates") || {};
  const paths = Flare.json("field-paths") || {};
  const editor = document.getElementById("id_document");
  const stateLabel = document.getElementById("json-state");
  const picker = document.getElementById("id_template");
  const fields = {};
  Object.keys(paths).forEach((name) => { fields[name] = document.getElementById("id_" + name); });

  function parse() {
    const text = editor.value.trim();
    if (!text) return { doc: {} };
    try {
      const doc = JSON.parse(text);
      if (!doc || typeof doc !== "object" || Array.isArray(doc)) return { error: "must be a JSON object" };
      return { doc };
    } catch (e) { return { error: e.message }; }
  }

  function showState() {
    const result = parse();
    if (!editor.value.trim()) { stateLabel.textContent = ""; stateLabel.className = "json-state"; }
    else if (result.error) { stateLabel.textContent = "✗ " + result.error; stateLabel.className = "json-state bad"; }
    else { stateLabel.textContent = "✓ valid JSON"; stateLabel.className = "json-state ok"; }
    return result;
  }

  function split(path) { return path.split(".").slice(1); } // drop the leading "intent" (we work on doc.intent)

  function getIn(intent, path) {
    return split(path).reduce((node, key) => (node && typeof node === "object" ? node[key] : undefined), intent);
  }

  function setIn(intent, path, value) {
    const keys = split(path);
    let node = intent;
    keys.slice(0, -1).forEach((key) => {
      if (!node[key] || typeof node[key] !== "object" || Array.isArray(node[key])) node[key] = {};
      node = node[key];
    });
    const last = keys[keys.length - 1];
    if (value === undefined) delete node[last]; else node[last] = value;
  }

  function intentOf(doc) {
    if (!doc.intent && (doc.workload || doc.objective)) return doc; // a bare intent object
    if (!doc.intent || typeof doc.intent !== "object") doc.intent = {};
    return doc.intent;
  }

  function toField(name, value, intent) {
    if (name === "commands") return Array.isArray(value) ? value.join("\n") : (value || "");
    if (name === "workload_type") return value === "job" ? "batch" : (value || "");
    if (name === "gpu_memory" && value == null) {
      const alias = getIn(intent, "intent.workload.resources.gpu.memory");
      return alias || "";
    }
    return value == null ? "" : String(value);
  }

  function fromField(name, raw) {
    const value = raw.trim();
    if (!value) return undefined;
    if (name === "commands") return raw.split("\n").map((l) => l.trim()).filter(Boolean);
    if (name === "gpu_count") { const n = parseInt(value, 10); return isNaN(n) ? value : n; }
    return value;
  }

  function fillFields(doc) {
    const intent = intentOf(doc);
    Object.entries(paths).forEach(([name, path]) => {
      const input = fields[name];
      if (!input || document.activeElement === input) return;
      input.value = toField(name, getIn(intent, path), intent);
    });
  }

  function fieldChanged(name) {
    const result = parse();
    if (result.error) return; // never overwrite a document the user is still fixing
    const doc = result.doc;
    const intent = intentOf(doc);
    setIn(intent, paths[name], fromField(name, fields[name].value));
    if (name === "gpu_memory") setIn(intent, "intent.workload.resources.gpu.memory", undefined);
    editor.value = JSON.stringify(doc, null, 2);
    showState();
  }

  Object.keys(fields).forEach((name) => {
    const input = fields[name];
    if (!input) return;
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => fieldChanged(name));
  });

  let timer = null;
  editor.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { const r = showState(); if (!r.error) fillFields(r.doc); }, 250);
  });
  editor.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || event.shiftKey) return;
    event.preventDefault();
    const start = editor.selectionStart, end = editor.selectionEnd;
    editor.setRangeText("  ", start, end, "end");
  });

  picker.addEventListener("change", () => {
    const doc = templates[picker.value];
    if (!doc) return;
    editor.value = JSON.stringify(doc, null, 2);
    Object.values(fields).forEach((input) => { if (input) input.value = ""; });
    fillFields(JSON.parse(editor.value));
    showState();
    document.querySelectorAll(".field.has-error").forEach((f) => {
      f.classList.remove("has-error");
      const list = f.querySelector(".errorlist");
      if (list) list.remove();
    });
  });

  document.getElementById("format-json").addEventListener("click", () => {
    const result = showState();
    if (!result.error) editor.value = JSON.stringify(result.doc, null, 2);
  });

  // First load: a document from the server (template link or a re-rendered form) fills the fields
  // only where the user typed nothing.
  const initial = showState();
  if (!initial.error && editor.value.trim()) {
    const intent = intentOf(initial.doc);
    Object.entries(paths).forEach(([name, path]) => {
      const input = fields[name];
      if (input && !input.value) input.value = toField(name, getIn(intent, path), intent);
    });
  }
})();
