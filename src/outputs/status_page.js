"use strict";
// The status page's behaviour: filter, sort and page the tables without a round trip; name a
// timeline mark on hover or focus; fetch the page again every sync interval and swap its data in,
// keeping each table's filter, sort and page. No inline handlers: listeners are attached here.
(function () {
  var state = {}; // table id → {filter, col, dir, page}
  var tables = {}; // table id → {table, rows: [{h, text, k, i}], size}

  function stateOf(id) {
    if (!state[id]) state[id] = { filter: "", col: -1, dir: 1, page: 0 };
    return state[id];
  }

  function setUp(table) {
    // Every row comes as its HTML in a data block (the table holds the first page only, for a
    // browser without this script); its text and sort keys are worked out when first needed.
    var data = document.getElementById(table.id.replace(/-table$/, "-rows"));
    var rows = JSON.parse(data ? data.textContent : "[]").map(function (h, i) {
      return { h: h, i: i };
    });
    tables[table.id] = { table: table, rows: rows, size: Number(table.getAttribute("data-page-size")) || 100 };
    var input = document.querySelector('input.filter[data-table="' + table.id + '"]');
    var st = stateOf(table.id);
    if (input) {
      // Typed before this script ran: keep it; after a refresh: put the filter back.
      if (!st.filter && input.value) st.filter = input.value;
      else input.value = st.filter;
      input.addEventListener("input", function () {
        st.filter = input.value;
        st.page = 0;
        show(table.id);
      });
    }
    Array.prototype.forEach.call(table.tHead.querySelectorAll("button[data-col]"), function (b) {
      b.addEventListener("click", function () {
        var col = Number(b.getAttribute("data-col"));
        st.dir = st.col === col ? -st.dir : 1;
        st.col = col;
        st.page = 0;
        show(table.id);
      });
    });
    show(table.id);
  }

  var ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };
  function plain(html) {
    return html.replace(/<[^>]*>/g, " ").replace(/&(amp|lt|gt|quot|#39);/g, function (e) { return ENTITIES[e]; })
      .replace(/\s+/g, " ").trim().toLowerCase();
  }

  // The row's text, for the filter.
  function text(r) {
    if (r.text === undefined) r.text = plain(r.h);
    return r.text;
  }

  // One key per cell: its data-sort number, else its text.
  function keys(r) {
    if (r.k === undefined) {
      r.k = r.h.split("<td").slice(1).map(function (cell) {
        var tag = cell.slice(0, cell.indexOf(">"));
        var n = /data-sort="(-?\d+)"/.exec(tag);
        return n ? Number(n[1]) : plain(cell.slice(tag.length + 1).split("</td>")[0]);
      });
    }
    return r.k;
  }

  function show(id) {
    var t = tables[id], st = stateOf(id);
    var needle = st.filter.trim().toLowerCase();
    var match = needle ? t.rows.filter(function (r) { return text(r).indexOf(needle) !== -1; }) : t.rows.slice();
    if (st.col >= 0) {
      match.sort(function (a, b) {
        var x = keys(a)[st.col], y = keys(b)[st.col];
        var c = x < y ? -1 : x > y ? 1 : 0;
        return c !== 0 ? c * st.dir : a.i - b.i;
      });
    }
    var pages = Math.max(1, Math.ceil(match.length / t.size));
    st.page = Math.min(st.page, pages - 1);
    var start = st.page * t.size;
    var slice = match.slice(start, start + t.size);
    t.table.tBodies[0].innerHTML = slice.map(function (r) { return r.h; }).join("");
    Array.prototype.forEach.call(t.table.tHead.querySelectorAll("button[data-col]"), function (b) {
      if (Number(b.getAttribute("data-col")) === st.col) b.setAttribute("aria-sort", st.dir > 0 ? "ascending" : "descending");
      else b.removeAttribute("aria-sort");
    });
    var name = id.replace(/-table$/, "");
    var shown = document.getElementById(name + "-shown");
    if (shown) {
      shown.textContent = match.length === t.rows.length
        ? t.rows.length + " rows"
        : match.length + " of " + t.rows.length + " rows match";
    }
    pager(t, st, pages, match.length, start, slice.length);
  }

  function pager(t, st, pages, total, start, n) {
    var nav = t.table.parentNode.nextElementSibling;
    if (!nav || !nav.classList.contains("pager")) return;
    if (pages <= 1) { nav.replaceChildren(); return; }
    var prev = document.createElement("button"), next = document.createElement("button");
    var label = document.createElement("span");
    prev.type = next.type = "button";
    prev.textContent = "← previous";
    next.textContent = "next →";
    prev.disabled = st.page === 0;
    next.disabled = st.page >= pages - 1;
    label.textContent = "rows " + (start + 1) + "–" + (start + n) + " of " + total;
    prev.addEventListener("click", function () { st.page -= 1; show(t.table.id); });
    next.addEventListener("click", function () { st.page += 1; show(t.table.id); });
    nav.replaceChildren(prev, label, next);
  }

  function marks() {
    var info = document.getElementById("mark-info");
    var svg = document.querySelector("svg.timeline");
    var data = document.getElementById("mark-labels");
    if (!info || !svg || !data) return;
    var labels = JSON.parse(data.textContent);
    var name = function (e) {
      var m = e.target.closest && e.target.closest(".mark");
      if (m) info.textContent = labels[Number(m.getAttribute("data-i"))] || "";
    };
    svg.addEventListener("mouseover", name);
    svg.addEventListener("focusin", name);
  }

  function wire() {
    Array.prototype.forEach.call(document.querySelectorAll("table.data"), setUp);
    marks();
  }

  function ticking() {
    var header = document.getElementById("status");
    var age = document.getElementById("age");
    var last = header && Number(header.getAttribute("data-last-success"));
    if (!age || !last) return;
    var s = Math.max(0, Math.round(Date.now() / 1000 - last));
    age.textContent = s < 120 ? s + " seconds" : s < 7200 ? Math.round(s / 60) + " minutes" : Math.round(s / 3600) + " hours";
  }

  function refresh() {
    fetch(location.pathname, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["status", "account"].forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) old.replaceWith(document.adoptNode(fresh));
        });
        tables = {};
        wire();
      })
      .catch(function () { /* the next refresh tries again */ })
      .then(schedule);
  }

  function schedule() {
    var header = document.getElementById("status");
    var every = Math.max(5, Number(header && header.getAttribute("data-refresh")) || 60);
    setTimeout(refresh, every * 1000);
  }

  wire();
  setInterval(ticking, 5000);
  schedule();
})();
