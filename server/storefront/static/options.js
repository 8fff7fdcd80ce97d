/* Berth install form: switch the options between the generated form and a JSON view.
   The server reads whichever view is active (hidden field "mode"). Without this
   script the JSON view is a <details> block with its own submit button. */
(function () {
  "use strict";

  var PREFIX = "opt:";

  function pathOf(name) {
    return name.slice(PREFIX.length).split("/").map(function (p) {
      return p.replace(/~1/g, "/").replace(/~0/g, "~");
    });
  }

  function setIn(obj, path, value) {
    var node = obj;
    for (var i = 0; i < path.length - 1; i++) {
      if (typeof node[path[i]] !== "object" || node[path[i]] === null) { node[path[i]] = {}; }
      node = node[path[i]];
    }
    node[path[path.length - 1]] = value;
  }

  function getIn(obj, path) {
    var node = obj;
    for (var i = 0; i < path.length; i++) {
      if (node === null || typeof node !== "object" || !(path[i] in node)) { return undefined; }
      node = node[path[i]];
    }
    return node;
  }

  function toNumber(text, type) {
    var n = Number(text);
    if (text.trim() === "" || isNaN(n)) { throw new Error(text + " is not a number"); }
    return type === "integer" ? Math.trunc(n) : n;
  }

  function readField(el) {
    var type = el.getAttribute("data-type") || "string";
    if (el.type === "checkbox") { return el.checked; }
    var text = el.value;
    if (text.trim() === "") { return undefined; }
    if (el.hasAttribute("data-enum")) {
      if (type === "string") { return text; }
      try { return JSON.parse(text); } catch (e) { return text; }
    }
    if (type === "integer" || type === "number") { return toNumber(text, type); }
    if (type === "json") { return JSON.parse(text); }
    if (type.indexOf("array:") === 0) {
      var itemType = type.slice(6);
      return text.split("\n").map(function (s) { return s.trim(); })
        .filter(function (s) { return s !== ""; })
        .map(function (s) {
          if (itemType === "integer" || itemType === "number") { return toNumber(s, itemType); }
          if (itemType === "boolean") { return s.toLowerCase() === "true"; }
          return s;
        });
    }
    return text;
  }

  function writeField(el, value) {
    var type = el.getAttribute("data-type") || "string";
    if (el.type === "checkbox") { el.checked = value === true; return; }
    if (value === undefined || value === null) { el.value = ""; return; }
    if (type === "json") { el.value = JSON.stringify(value, null, 2); return; }
    if (type.indexOf("array:") === 0 && Array.isArray(value)) { el.value = value.join("\n"); return; }
    if (el.hasAttribute("data-enum") && typeof value !== "string") { el.value = JSON.stringify(value); return; }
    el.value = String(value);
  }

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name.indexOf(PREFIX) === 0;
    });
  }

  function formToObject(form, base) {
    var out = base || {};
    fields(form).forEach(function (el) {
      var value = readField(el);
      if (value !== undefined) { setIn(out, pathOf(el.name), value); }
    });
    return out;
  }

  function objectToForm(form, obj) {
    fields(form).forEach(function (el) { writeField(el, getIn(obj, pathOf(el.name))); });
  }

  function init() {
    var form = document.getElementById("install-form");
    var tabs = document.getElementById("option-tabs");
    if (!form || !tabs) { return; }
    var mode = document.getElementById("mode");
    var formView = document.getElementById("form-view");
    var jsonView = document.getElementById("json-view");
    var textarea = document.getElementById("options_json");
    var tabForm = document.getElementById("tab-form");
    var tabJson = document.getElementById("tab-json");
    var error = document.createElement("p");
    error.className = "field-error";
    error.setAttribute("role", "alert");
    jsonView.querySelector(".json-view").appendChild(error);

    tabs.classList.remove("hidden");
    jsonView.querySelector("summary").classList.add("hidden");
    /* Show the JSON view where the form view is, and let the main button submit it. */
    formView.parentNode.insertBefore(jsonView, formView.nextSibling);
    var fallback = jsonView.querySelector("button[name=json_submit]");
    if (fallback) { fallback.parentNode.removeChild(fallback); }

    function show(which) {
      var json = which === "json";
      tabForm.setAttribute("aria-selected", json ? "false" : "true");
      tabJson.setAttribute("aria-selected", json ? "true" : "false");
      formView.classList.toggle("hidden", json);
      jsonView.classList.toggle("hidden", !json);
      jsonView.open = json;
      mode.value = json ? "json" : "form";
    }

    tabJson.addEventListener("click", function () {
      var base = {};
      try { base = JSON.parse(textarea.value || "{}"); } catch (e) { base = {}; }
      try {
        textarea.value = JSON.stringify(formToObject(form, base), null, 2);
        error.textContent = "";
      } catch (e) {
        error.textContent = "A field does not hold a valid value: " + e.message;
      }
      show("json");
    });
    tabForm.addEventListener("click", function () {
      try {
        var obj = JSON.parse(textarea.value || "{}");
        objectToForm(form, obj);
        error.textContent = "";
        show("form");
      } catch (e) {
        error.textContent = "The JSON is not valid, so it cannot be shown as a form: " + e.message;
      }
    });
    show(jsonView.open ? "json" : "form");
  }

  /* A credentials handover checkbox names the service chosen in its link's select. */
  function followLinks() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-handover-for]"), function (box) {
      var select = document.getElementById(box.getAttribute("data-handover-for"));
      var label = box.parentNode.querySelector("[data-handover-name]");
      if (!select || !label) { return; }
      function update() {
        label.textContent = select.value || "the selected service";
        box.disabled = !select.value;
        if (!select.value) { box.checked = false; }
      }
      select.addEventListener("change", update);
      update();
    });
  }

  function start() { followLinks(); init(); }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
