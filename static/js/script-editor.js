// The campaign form's script editor: a scripted IVR's steps as a list with fields per kind, written
// into the bot settings' JSON field on every change (the JSON stays there to edit by hand), and a
// preview that walks the script on the server with the bot's own stepping code.
(function () {
  "use strict";
  var root = document.getElementById("script-editor");
  var field = document.getElementById("id_bot_settings");
  var kind = document.getElementById("id_bot_kind");
  if (!root || !field || !kind) return;
  var jsonGroup = field.closest("div");
  var promptNames = JSON.parse(document.getElementById("prompt-names").textContent);
  var KINDS = {
    say: "Say a prompt", pause: "Pause", gather: "Gather keys (menu, branches)", set: "Set variables",
    disposition: "Set the disposition", transfer: "Transfer to a person", opt_out: "Opt the caller out",
    "goto": "Go to a step", hangup: "Hang up"
  };
  var DEFAULTS = {
    say: function () { return ""; }, pause: function () { return 1; },
    gather: function () { return { timeout: 5, branches: {} }; }, set: function () { return { name: "value" }; },
    disposition: function () { return "interested"; }, transfer: function () { return true; },
    opt_out: function () { return true; }, "goto": function () { return ""; }, hangup: function () { return true; }
  };
  var spec = null;  // the script being edited; null while the JSON does not parse
  var answers = [];  // the preview caller's keys, one text per gather reached
  var list = root.querySelector("[data-steps]");
  var $ = function (selector) { return root.querySelector(selector); };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name in node && name !== "list") node[name] = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var uid = 0;
  function labelled(text, input, hint) {
    input.id = input.id || "script-field-" + (++uid);
    var label = el("label", { htmlFor: input.id, text: text });
    return el("div", { className: "script-field" },
              [label, input, hint ? el("span", { className: "helptext", text: hint }) : null]);
  }

  function actionOf(step) {
    return Object.keys(KINDS).filter(function (name) { return name in step; })[0];
  }

  function ids() {
    return spec.steps.map(function (step) { return step.id; }).filter(function (id) { return typeof id === "string" && id; });
  }

  function write() {
    field.value = JSON.stringify(spec, null, 2);
  }

  // A text input whose every change goes through `set` into the script and on into the JSON field.
  function input(value, set, attrs) {
    var node = el("input", Object.assign({ type: "text", value: value === undefined ? "" : String(value) }, attrs || {}));
    node.addEventListener("input", function () { set(node.value); write(); });
    return node;
  }

  function number(value, set, attrs) {
    return input(value, function (text) { set(text === "" || isNaN(Number(text)) ? text : Number(text)); },
                 Object.assign({ inputMode: "decimal" }, attrs || {}));
  }

  function promptInput(value, set) {
    return input(value, set, { list: "prompt-name-list", autocomplete: "off", spellcheck: false });
  }

  // A step to go to: "" goes on to the next step; a target no step has stays, marked, for the check on save.
  function target(value, set, blank) {
    var choices = ids();
    var node = el("select", {}, [el("option", { value: "", text: blank })]);
    choices.forEach(function (id) { node.appendChild(el("option", { value: id, text: id })); });
    if (value && choices.indexOf(value) < 0) node.appendChild(el("option", { value: value, text: value + " (no such step)" }));
    node.value = value || "";
    node.addEventListener("change", function () { set(node.value); write(); });
    return node;
  }

  function rows(object, makeRow, addText, onAdd) {
    var box = el("div", { className: "script-rows" });
    Object.keys(object).forEach(function (key) { box.appendChild(makeRow(key)); });
    box.appendChild(el("button", { type: "button", text: addText, onclick: onAdd }));
    return box;
  }

  function rename(object, from, to) {
    var renamed = {};
    Object.keys(object).forEach(function (key) { renamed[key === from ? to : key] = object[key]; });
    return renamed;
  }

  var FIELDS = {
    say: function (step) {
      var bargeIn = el("input", { type: "checkbox", checked: step.barge_in !== false });
      bargeIn.addEventListener("change", function () {
        if (bargeIn.checked) delete step.barge_in; else step.barge_in = false;
        write();
      });
      var label = el("label", {}, [bargeIn, document.createTextNode(" The caller may interrupt it (speech or a key)")]);
      return [labelled("Prompt", promptInput(step.say, function (v) { step.say = v; }),
                       "A prompt's name; {variable} parts are filled per contact, e.g. greeting-{language}."), label];
    },
    pause: function (step) {
      return [labelled("Seconds", number(step.pause, function (v) { step.pause = v; }))];
    },
    gather: function (step, redraw) {
      var g = step.gather;
      g.branches = g.branches || {};
      var branches = rows(g.branches, function (keys) {
        var keysInput = el("input", { type: "text", value: keys, size: 4, inputMode: "tel" });
        keysInput.addEventListener("change", function () { g.branches = rename(g.branches, keys, keysInput.value); redraw(); });
        return el("div", { className: "script-row" }, [
          labelled("Keys", keysInput),
          labelled("Go to", target(g.branches[keys], function (v) { g.branches[keys] = v; }, "(choose a step)")),
          el("button", { type: "button", text: "Remove branch", onclick: function () { delete g.branches[keys]; redraw(); } })
        ]);
      }, "Add a branch", function () {
        var free = "123456789*0#".split("").filter(function (k) { return !(k in g.branches); })[0] || "";
        g.branches[free] = "";
        redraw();
      });
      return [
        el("div", { className: "grid" }, [
          labelled("Timeout (seconds)", number(g.timeout, function (v) { g.timeout = v; })),
          labelled("Max keys", number(g.max_digits === undefined ? 1 : g.max_digits, function (v) { g.max_digits = v; })),
          labelled("Ends with key", input(g.terminator === undefined ? "#" : g.terminator,
                                           function (v) { g.terminator = v; }, { maxLength: 1, size: 2 })),
          labelled("Keep the keys as", input(g.into || "digits", function (v) { g.into = v; }))
        ]),
        el("div", {}, [el("b", { text: "Branches" }), branches]),
        el("div", { className: "grid" }, [
          labelled("No keys in time", target(g.no_input, function (v) { if (v) g.no_input = v; else delete g.no_input; }, "go on")),
          labelled("Any other keys", target(g["default"], function (v) { if (v) g["default"] = v; else delete g["default"]; }, "go on"))
        ])
      ];
    },
    set: function (step, redraw) {
      return [rows(step.set, function (name) {
        var value = step.set[name];
        var type = el("select", {}, [el("option", { value: "string", text: "text" }), el("option", { value: "number", text: "number" }),
                                     el("option", { value: "boolean", text: "true / false" })]);
        type.value = typeof value;
        var valueInput = input(value, function (text) { step.set[name] = coerce(text, type.value); });
        type.addEventListener("change", function () { step.set[name] = coerce(valueInput.value, type.value); write(); });
        var nameInput = el("input", { type: "text", value: name });
        nameInput.addEventListener("change", function () { step.set = rename(step.set, name, nameInput.value); redraw(); });
        return el("div", { className: "script-row" }, [labelled("Variable", nameInput), labelled("Value", valueInput),
                                                       labelled("Kind of value", type),
                                                       el("button", { type: "button", text: "Remove", onclick: function () { delete step.set[name]; redraw(); } })]);
      }, "Add a variable", function () { step.set["name" + (Object.keys(step.set).length + 1)] = ""; redraw(); })];
    },
    disposition: function (step) {
      return [labelled("Disposition", input(step.disposition, function (v) { step.disposition = v; }, { maxLength: 100 }),
                       "The call's outcome, e.g. interested.")];
    },
    transfer: function (step) {
      var parts = step.transfer === true ? {} : step.transfer;
      function set(name) {
        return function (v) {
          if (v) parts[name] = v; else delete parts[name];
          step.transfer = Object.keys(parts).length ? parts : true;
        };
      }
      return [labelled("Message to the caller (a prompt, optional)", promptInput(parts.message, set("message"))),
              labelled("Whisper to the agent (optional)", input(parts.whisper, set("whisper"), { maxLength: 300 }),
                       "Said to the agent after the call's summary; {variable} parts are filled.")];
    },
    opt_out: function () { return [el("p", { className: "muted", text: "Puts the number on the workspace's do-not-call list; the script goes on." })]; },
    "goto": function (step) { return [labelled("Step", target(step["goto"], function (v) { step["goto"] = v; }, "(choose a step)"))]; },
    hangup: function () { return [el("p", { className: "muted", text: "Ends the call." })]; }
  };

  function coerce(text, type) {
    if (type === "number") return text === "" || isNaN(Number(text)) ? text : Number(text);
    if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
    return text;
  }

  function move(index, by) {
    var step = spec.steps.splice(index, 1)[0];
    spec.steps.splice(index + by, 0, step);
    draw();
  }

  function stepCard(step, index) {
    var action = actionOf(step);
    var card = el("li", { className: "script-step card" });
    card.dataset.step = index + 1;
    var kindSelect = el("select", {});
    Object.keys(KINDS).forEach(function (name) { kindSelect.appendChild(el("option", { value: name, text: KINDS[name] })); });
    kindSelect.value = action;
    kindSelect.addEventListener("change", function () {
      delete step[action];
      delete step.barge_in;
      step[kindSelect.value] = DEFAULTS[kindSelect.value]();
      draw();
    });
    var idInput = el("input", { type: "text", value: step.id || "", size: 10, spellcheck: false });
    idInput.addEventListener("change", function () { renameStep(step, idInput.value.trim()); });
    var tools = el("div", { className: "actions" }, [
      el("button", { type: "button", text: "Up", title: "Move step " + (index + 1) + " up", disabled: index === 0,
                     onclick: function () { move(index, -1); } }),
      el("button", { type: "button", text: "Down", title: "Move step " + (index + 1) + " down",
                     disabled: index === spec.steps.length - 1, onclick: function () { move(index, 1); } }),
      el("button", { type: "button", className: "danger", text: "Remove step",
                     onclick: function () { spec.steps.splice(index, 1); draw(); } })
    ]);
    card.appendChild(el("div", { className: "script-step-head" }, [
      el("b", { text: "Step " + (index + 1) }), labelled("Kind", kindSelect), labelled("Id (to jump to)", idInput), tools]));
    (FIELDS[action] ? FIELDS[action](step, draw) : []).forEach(function (node) { card.appendChild(node); });
    card.appendChild(el("ul", { className: "errorlist", hidden: true }));
    return card;
  }

  // A step's new id: every branch and jump to the old one follows it.
  function renameStep(step, id) {
    var old = step.id;
    if (id) step.id = id; else delete step.id;
    if (old) {
      spec.steps.forEach(function (other) {
        var g = other.gather;
        if (other["goto"] === old) other["goto"] = id;
        if (!g) return;
        Object.keys(g.branches || {}).forEach(function (keys) { if (g.branches[keys] === old) g.branches[keys] = id; });
        ["no_input", "default"].forEach(function (name) { if (g[name] === old) g[name] = id; });
      });
    }
    draw();
  }

  function render() {
    list.textContent = "";
    spec.steps.forEach(function (step, index) { list.appendChild(stepCard(step, index)); });
  }

  function draw() {  // after an edit
    render();
    write();
  }

  // The field's errors from the last save, above the steps (the JSON field is hidden), and on the
  // card of the step each names ("Step N…", "Script step N (say)…").
  function showServerErrors() {
    var errors = jsonGroup.querySelectorAll(".errorlist li");
    var summary = $("[data-errors]");
    Array.prototype.forEach.call(errors, function (item) {
      summary.hidden = false;
      summary.appendChild(el("li", { text: item.textContent }));
      var found = /^(?:Script )?step (\d+)/i.exec(item.textContent);
      var card = found && list.querySelector('[data-step="' + found[1] + '"]');
      if (!card) return;
      var box = card.querySelector(".errorlist");
      box.hidden = false;
      box.appendChild(el("li", { text: item.textContent }));
      card.classList.add("has-error");
    });
  }

  function parse() {
    var parsed;
    try {
      parsed = JSON.parse(field.value.trim() || "{}");
    } catch (error) {
      return "The JSON does not parse (" + error.message + "): correct it here, or save to be told the line and step.";
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && !Object.keys(parsed).length) parsed = { steps: [] };
    if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.steps) ||
        !parsed.steps.every(function (step) { return step && typeof step === "object" && actionOf(step); })) {
      return 'The steps editor needs {"steps": [...]} with one known action per step: edit this one as JSON.';
    }
    spec = parsed;
    return "";
  }

  function setMode(steps) {
    var problem = steps ? parse() : "";
    var useSteps = steps && !problem;
    $("[data-problem]").textContent = problem;
    $("[data-problem]").hidden = !problem;
    $("[data-steps-view]").hidden = !useSteps;
    jsonGroup.hidden = useSteps;
    $("[data-mode-steps]").setAttribute("aria-pressed", String(useSteps));
    $("[data-mode-json]").setAttribute("aria-pressed", String(!useSteps));
    if (useSteps) render();
  }

  function showForKind() {
    var script = kind.value === "script";
    root.hidden = !script;
    if (!script) {
      jsonGroup.hidden = false;
      return;
    }
    var syntax = jsonGroup.querySelector(".errorlist li");
    setMode(!(syntax && /^The JSON breaks/.test(syntax.textContent)));  // a broken text is mended as text
  }

  // --- the preview ---------------------------------------------------------------------------

  function variables() {
    var result = {};
    $("[data-variables]").value.split(",").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) result[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
    });
    return result;
  }

  function walk() {
    var form = field.form;
    var out = $("[data-preview]");
    out.setAttribute("aria-busy", "true");
    fetch(root.dataset.previewUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
      body: JSON.stringify({ script: field.value, variables: variables(), answers: answers,
                             connect_mode: form.querySelector("[name=connect_mode]").value,
                             transfer_group: (form.querySelector("[name=transfer_group]") || {}).value || "" })
    }).then(function (response) {
      if (!response.ok && response.status !== 400) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (body) { showWalk(out, body); })
      .catch(function (error) { out.textContent = "The preview failed (" + error.message + "); try again."; })
      .then(function () { out.removeAttribute("aria-busy"); });
  }

  function showWalk(out, body) {
    out.textContent = "";
    Array.prototype.forEach.call(list.querySelectorAll(".current"), function (card) { card.classList.remove("current"); });
    if (body.errors) {
      out.appendChild(el("ul", { className: "errorlist" }, body.errors.map(function (e) { return el("li", { text: e }); })));
      return;
    }
    if (body.warnings.length) {
      out.appendChild(el("p", { className: "error", text: "Saving will refuse this script:" }));
      out.appendChild(el("ul", { className: "errorlist" }, body.warnings.map(function (w) { return el("li", { text: w }); })));
    }
    out.appendChild(el("ol", { className: "script-trace" }, body.trace.map(function (entry) {
      return el("li", { text: "Step " + entry.step + (entry.id ? " (" + entry.id + ")" : "") + ": " + entry.text });
    })));
    var last = body.trace.length && body.trace[body.trace.length - 1];
    var card = last && list.querySelector('[data-step="' + last.step + '"]');
    if (card) card.classList.add("current");
    if (body.waiting) {
      out.appendChild(keypad(body.waiting));
    } else {
      out.appendChild(el("p", { text: body.ended + (body.disposition ? " Disposition: " + body.disposition + "." : "") }));
    }
  }

  function answer(keys) {
    answers.push(keys);
    walk();
  }

  function keypad(waiting) {
    var other = el("input", { type: "text", size: 6, inputMode: "tel", id: "script-preview-keys" });
    var pad = el("div", { className: "actions" }, [el("span", { text: "The caller keys:" })]);
    Object.keys(waiting.branches).forEach(function (keys) {
      pad.appendChild(el("button", { type: "button", text: keys + " → " + waiting.branches[keys], onclick: function () { answer(keys); } }));
    });
    pad.appendChild(el("button", { type: "button", text: "Nothing (timeout)", onclick: function () { answer(""); } }));
    pad.appendChild(el("label", { htmlFor: other.id, text: "Other keys" }));
    pad.appendChild(other);
    pad.appendChild(el("button", { type: "button", text: "Press", onclick: function () { answer(other.value.trim()); } }));
    return pad;
  }

  // --- wiring ------------------------------------------------------------------------------

  Object.keys(KINDS).forEach(function (name) { $("[data-add-kind]").appendChild(el("option", { value: name, text: KINDS[name] })); });
  $("[data-mode-steps]").addEventListener("click", function () { setMode(true); });
  $("[data-mode-json]").addEventListener("click", function () { setMode(false); });
  $("[data-add]").addEventListener("click", function () {
    var step = {};
    step[$("[data-add-kind]").value] = DEFAULTS[$("[data-add-kind]").value]();
    spec.steps.push(step);
    draw();
    list.lastChild.querySelector("select").focus();
  });
  $("[data-walk]").addEventListener("click", function () { answers = []; walk(); });
  kind.addEventListener("change", showForKind);
  var datalist = el("datalist", { id: "prompt-name-list" }, promptNames.map(function (name) { return el("option", { value: name }); }));
  root.appendChild(datalist);
  showForKind();
  if (!root.hidden && spec) showServerErrors();
})();
