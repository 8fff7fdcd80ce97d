/* Berth store front: small progressive enhancements. Every page works without it. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function debounce(fn, ms) {
    var t = null;
    return function () {
      var args = arguments;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function fetchText(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); });
  }

  /* A select that submits its form when changed (version picker, repository filter). */
  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
  }

  /* Search as you type: ask the server for the results block and swap it in. */
  function liveSearch() {
    document.querySelectorAll("form[data-live-search]").forEach(function (form) {
      var target = document.querySelector(form.getAttribute("data-live-search"));
      var input = form.querySelector("input[type=search]");
      if (!target || !input) { return; }
      var last = input.value;
      var run = debounce(function () {
        if (input.value === last) { return; }
        last = input.value;
        var params = new URLSearchParams(new FormData(form));
        if (!params.get("q")) { params.delete("q"); }
        var query = params.toString();
        params.set("partial", "1");
        fetchText(form.action + "?" + params.toString()).then(function (html) {
          target.innerHTML = html;
          history.replaceState(null, "", form.action + (query ? "?" + query : ""));
          var status = document.getElementById("search-status");
          var heading = target.querySelector("h2");
          if (status && heading) { status.textContent = heading.textContent.trim(); }
        }).catch(function () { /* keep the current results */ });
      }, 200);
      input.addEventListener("input", run);
    });
  }

  /* Live blocks: re-fetch a fragment until it says it is final. */
  function livePoll() {
    document.querySelectorAll("[data-poll]").forEach(function (box) {
      var url = box.getAttribute("data-poll");
      var every = parseInt(box.getAttribute("data-poll-every") || "1500", 10);
      var follow = box.hasAttribute("data-follow");
      function tick() {
        if (box.getAttribute("data-final") === "1") { return; }
        fetchText(url).then(function (html) {
          var scroller = box.querySelector("pre");
          var atEnd = scroller && scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 8;
          box.innerHTML = html;
          if (box.querySelector("[data-final='1']")) { box.setAttribute("data-final", "1"); }
          var pre = box.querySelector("pre");
          if (follow && pre && (atEnd || !scroller)) { pre.scrollTop = pre.scrollHeight; }
          setTimeout(tick, every);
        }).catch(function () { setTimeout(tick, every * 3); });
      }
      setTimeout(tick, every);
    });
  }

  /* A destructive button stays disabled until the exact name is typed. */
  function confirmName() {
    document.querySelectorAll("input[data-confirm-name]").forEach(function (input) {
      var button = input.form && input.form.querySelector("button[type=submit]");
      if (!button) { return; }
      var want = input.getAttribute("data-confirm-name");
      function check() { button.disabled = input.value.trim() !== want; }
      input.addEventListener("input", check);
      check();
    });
  }

  function ready() {
    autosubmit();
    liveSearch();
    livePoll();
    confirmName();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
