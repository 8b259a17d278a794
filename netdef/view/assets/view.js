/* netdef view: the page's script (inlined into every page by netdef/view/__init__.py).
 *
 * Reads the page's data from the JSON script element #netdef-data with JSON.parse
 * and builds everything with DOM calls. Text from the definition only ever goes into the page
 * through textContent or attribute values set with setAttribute on SVG geometry, never as
 * markup; nothing is evaluated, and nothing is fetched.
 */
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("netdef-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  // The family colours come with the data (netdef/view/data.py family_fills, from draw.py's FILLS).
  var FILLS = DATA.fills || {};

  // --- small helpers -------------------------------------------------------------------------
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  function s(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function num(n) { return n === null || n === undefined ? "?" : n.toLocaleString("en-US"); }
  function si(n) {
    if (n === null || n === undefined) return "?";
    var units = [["G", 1e9], ["M", 1e6], ["K", 1e3]];
    for (var i = 0; i < units.length; i++) if (Math.abs(n) >= units[i][1]) return (n / units[i][1]).toFixed(2) + units[i][0];
    return String(n);
  }
  function bytes(n) {
    if (n === null || n === undefined) return "?";
    var units = [["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
    for (var i = 0; i < units.length; i++) if (n >= units[i][1]) return (n / units[i][1]).toFixed(1) + " " + units[i][0];
    return n + " B";
  }
  function dims(shape) {
    if (shape === null || shape === undefined) return "?";
    return shape.length ? shape.join("×") : "scalar";
  }
  var sourceLines = DATA.source.split("\n");
  function baseName(p) { return String(p).split(/[\\/]/).pop(); }
  function sourceBlock(from, to, mark) {
    var pre = h("pre", { cls: "src" });
    for (var i = from; i <= to && i <= sourceLines.length; i++) {
      var line = h("span", { cls: i === mark ? "hl" : "" }, h("span", { cls: "ln", text: String(i) }),
                   sourceLines[i - 1].replace(/\r$/, ""));
      line.setAttribute("data-line", String(i));
      pre.appendChild(line);
      pre.appendChild(document.createTextNode("\n"));
    }
    return pre;
  }
  function kv(rows) {
    var t = h("table", { cls: "kv" });
    rows.forEach(function (r) {
      if (!r) return;
      var v = r[1];
      t.appendChild(h("tr", r[2] ? { cls: r[2] } : null, h("td", { text: r[0] }),
                      typeof v === "string" ? h("td", { text: v }) : h("td", null, v)));
    });
    return t;
  }
  function diagList(diags, onpick) {
    var ul = h("ul", { cls: "diags" });
    diags.forEach(function (d, i) {
      var where = (d.file ? baseName(d.file) : "") + (d.line ? ":" + d.line + ":" + d.col : "");
      var li = h("li", { cls: d.severity, onclick: function () { onpick(d, i); } },
                 h("div", { cls: "where", text: where + "  " + d.severity + "[" + d.code + "]" }),
                 h("div", { text: d.message }));
      (d.notes || []).forEach(function (n) { li.appendChild(h("div", { cls: "note", text: "note: " + n })); });
      ul.appendChild(li);
    });
    return ul;
  }

  if (DATA.kind === "solver") solverPage(); else netPage();

  // ============================================================================================
  // nets
  // ============================================================================================
  function netPage() {
    var S = 0, st = null, expanded = {}, selected = null, selectedBlob = null;
    var query = "", matches = [], matchAt = -1, blobMatches = {};
    var view = { k: 1, x: 0, y: 0 }, geom = null;

    var header = h("header");
    var titleEl = h("span", { cls: "title", text: DATA.name || "net" });
    var fileEl = h("span", { cls: "file", text: baseName(DATA.file), title: DATA.file });
    var statesEl = h("span", { cls: "states" });
    var search = h("input", { type: "search", placeholder: "search layers and blobs (Enter: next)", id: "search" });
    var countEl = h("span", { cls: "count" });
    var diagBadge = h("span", { cls: "badge" });
    var tableBtn = h("button", { text: "Table", cls: "on", id: "toggle-table" });
    var expandBtn = h("button", { text: "Expand all", id: "expand-all" });
    var foldBtn = h("button", { text: "Fold all", id: "fold-all" });
    var overviewBtn = h("button", { text: "Overview", id: "overview" });
    var sourceBtn = h("button", { text: "Source", id: "show-source" });
    header.appendChild(titleEl); header.appendChild(fileEl); header.appendChild(diagBadge);
    header.appendChild(statesEl); header.appendChild(h("span", { cls: "spacer" }));
    header.appendChild(search); header.appendChild(countEl);
    [expandBtn, foldBtn, tableBtn, overviewBtn, sourceBtn].forEach(function (b) { header.appendChild(b); });

    var graphEl = h("div", { id: "graph" });
    var svg = s("svg", { id: "graph-svg" });
    var vp = s("g", { id: "viewport" });
    svg.appendChild(vp);
    graphEl.appendChild(svg);
    var zoomctl = h("div", { id: "zoomctl" },
                    h("button", { text: "+", title: "zoom in", onclick: function () { zoomBy(1.25); } }),
                    h("button", { text: "−", title: "zoom out", onclick: function () { zoomBy(0.8); } }),
                    h("button", { text: "Fit", id: "fit", title: "fit to screen", onclick: fit }));
    graphEl.appendChild(zoomctl);
    graphEl.appendChild(h("div", { id: "legend", text: "drag to pan · wheel to zoom · click a block to unfold it" }));

    var tableFilter = h("input", { type: "search", placeholder: "filter rows", id: "table-filter" });
    var tableInfo = h("span", { cls: "muted" });
    var tableScroll = h("div", { id: "tablescroll" });
    var tableWrap = h("div", { id: "tablewrap" }, h("div", { id: "tablebar" }, h("b", { text: "Layers" }), tableFilter, tableInfo),
                      tableScroll);
    var left = h("div", { id: "left" }, graphEl, tableWrap);
    var panel = h("div", { id: "panel" });
    document.body.appendChild(header);
    document.body.appendChild(h("main", null, left, panel));

    // --- states ---------------------------------------------------------------------------
    if (DATA.states.length > 1) {
      DATA.states.forEach(function (state, i) {
        var b = h("button", { text: state.label, onclick: function () { setState(i); } });
        b.setAttribute("data-state", String(i));
        statesEl.appendChild(b);
      });
    }
    function setState(i) {
      var keep = selected !== null ? st.layers[selected].name : null;
      S = i; st = DATA.states[i]; expanded = {}; selected = null; selectedBlob = null;
      Array.prototype.forEach.call(statesEl.children, function (b, k) { b.className = k === i ? "on" : ""; });
      var nd = st.diagnostics.filter(function (d) { return d.severity === "error"; }).length;
      var nw = st.diagnostics.filter(function (d) { return d.severity === "warning"; }).length;
      diagBadge.className = "badge " + (nd ? "error" : nw ? "warning" : "ok");
      diagBadge.textContent = nd ? nd + " error" + (nd > 1 ? "s" : "") + (nw ? ", " + nw + " warning" + (nw > 1 ? "s" : "") : "")
        : nw ? nw + " warning" + (nw > 1 ? "s" : "") : "no problems";
      buildTable();
      runSearch();
      render();
      initialView();
      if (keep !== null) {
        var j = st.layers.findIndex(function (l) { return l.name === keep; });
        if (j >= 0) { select(j, true); return; }
      }
      showOverview();
    }

    // --- geometry: the layout with expanded blocks ------------------------------------------
    var PAD = 10, TITLE = 20;
    function blockFrame(bid) {
      var lay = st.layout.blocks[bid];
      return { w: lay.w + 2 * PAD, h: lay.h + TITLE + PAD };
    }
    function computeGeom() {
      var top = st.layout.top, exp = [];
      top.nodes.forEach(function (n) {
        if (n.kind === "block" && expanded[n.block]) {
          var f = blockFrame(n.block);
          exp.push({ cy: n.y, dy: f.h - n.h, n: n, f: f });
        }
      });
      exp.sort(function (a, b) { return a.cy - b.cy; });
      // An opened block grows downwards: whatever lies below its centre moves down by the
      // difference in height...
      function shift(y) {
        var d = 0;
        for (var i = 0; i < exp.length; i++) { if (y > exp[i].cy) d += exp[i].dy; else break; }
        return d;
      }
      // ...and sideways: what lies beside it (edges passing it, a parallel branch) moves out by
      // half the difference in width, so that nothing runs across the opened frame.
      function shiftX(x, y) {
        var d = 0;
        for (var i = 0; i < exp.length; i++) {
          var e = exp[i], half = Math.max(0, (e.f.w - e.n.w) / 2) + (e.f.w > e.n.w ? 12 : 0);
          var gap = Math.max(e.cy - e.n.h / 2 - 8 - y, y - (e.cy + e.n.h / 2 + 8), 0);
          if (!half || gap > 140) continue;
          var f = half * (1 - gap / 140);  // full beside the block, fading out above and below it
          if (x > e.n.x + e.n.w / 2 - 1) d += f; else if (x < e.n.x - e.n.w / 2 + 1) d -= f;
        }
        return d;
      }
      var frames = {}, minX = 0, maxX = top.w, maxY = top.h + (exp.length ? exp.reduce(function (a, e) { return a + e.dy; }, 0) : 0);
      exp.forEach(function (e) {
        var t = e.n.y - e.n.h / 2, T = t + shift(t), L = e.n.x + shiftX(e.n.x, e.n.y) - e.f.w / 2;
        frames[e.n.block] = { x: L, y: T, w: e.f.w, h: e.f.h, ix: L + PAD, iy: T + TITLE };
        var half = Math.max(0, (e.f.w - e.n.w) / 2);
        minX = Math.min(minX, L, -half); maxX = Math.max(maxX, L + e.f.w, maxX + half);
      });
      function map(p) { return [p[0] + shiftX(p[0], p[1]), p[1] + shift(p[1])]; }
      return { shift: shift, shiftX: shiftX, map: map, frames: frames, minX: minX, maxX: maxX, maxY: maxY,
               opened: exp.length > 0, cuts: exp.map(function (e) { return e.cy; }) };
    }

    // --- drawing ----------------------------------------------------------------------------
    var nodeEls = {}, edgeEls = [], blockEls = {};
    function layerClass(li) {
      var l = st.layers[li], c = [];
      if (l.diags.length) {
        var err = l.diags.some(function (k) { return st.diagnostics[k].severity === "error"; });
        c.push(err ? "err" : "warn");
      }
      if (l.states && l.states.length < DATA.states.length) c.push("diff");
      if (l.unknown) c.push("unknown");
      return c;
    }
    function drawNode(parent, n, ox, oy, inBlock) {
      var g = s("g", { "class": "node " + n.kind });
      var x = ox + n.x - n.w / 2, y = oy + n.y - n.h / 2;
      if (n.kind === "port") {
        parent.appendChild(s("circle", { cx: ox + n.x, cy: oy + n.y, r: 2.5, "class": "port" }));
        return;
      }
      var cls = [];
      if (n.kind === "input" || n.kind === "output" || n.kind === "missing") {
        var ell = s("ellipse", { cx: ox + n.x, cy: oy + n.y, rx: n.w / 2, ry: n.h / 2,
                                 fill: n.kind === "input" ? FILLS.data : "#fff" });
        if (n.kind === "missing") { ell.setAttribute("stroke-dasharray", "4 3"); ell.setAttribute("style", "stroke:#b22222"); }
        g.appendChild(ell);
        g.setAttribute("data-blob", String(n.v));
      } else if (n.kind === "block") {
        g.appendChild(s("rect", { x: x + 3, y: y + 3, width: n.w, height: n.h, rx: 6, "class": "back" }));
        g.appendChild(s("rect", { x: x, y: y, width: n.w, height: n.h, rx: 6 }));
        g.setAttribute("data-block", n.block);
        blockEls[n.block] = g;
        var bc = {};
        n.layers.forEach(function (li) { layerClass(li).forEach(function (c) { if (c !== "unknown") bc[c] = 1; }); });
        cls = Object.keys(bc);
      } else {
        var head = st.layers[n.layers[0]];
        g.appendChild(s("rect", { x: x, y: y, width: n.w, height: n.h, rx: 5,
                                  fill: head.unknown ? FILLS.unknown : (FILLS[head.family] || FILLS.other) }));
        n.layers.forEach(function (li) {
          nodeEls[li] = g;
          layerClass(li).forEach(function (c) { if (cls.indexOf(c) < 0) cls.push(c); });
        });
        g.setAttribute("data-layer", String(n.layers[0]));
        g.setAttribute("data-box", n.id);
      }
      cls.forEach(function (c) { g.classList.add(c); });
      var lines = n.lines || [];
      var isEll = n.kind === "input" || n.kind === "output" || n.kind === "missing";
      lines.forEach(function (ln, i) {
        var t = s("text", { x: isEll ? ox + n.x : x + 14, y: (isEll ? oy + n.y - (lines.length - 1) * 7.5 + 4 : y + 8 + 11 + i * 15) + (isEll ? i * 15 : 0),
                            "class": ln.f, text: ln.t });
        if (isEll) t.setAttribute("text-anchor", "middle");
        if (ln.l !== undefined) t.setAttribute("data-layer", String(ln.l));
        g.appendChild(t);
      });
      if (n.kind === "box" || n.kind === "block") {
        var marks = "";
        if (cls.indexOf("err") >= 0) marks = "✖"; else if (cls.indexOf("warn") >= 0) marks = "⚠";
        if (marks) g.appendChild(s("text", { x: x + n.w - 14, y: y + 15, "class": "mark", fill: cls.indexOf("err") >= 0 ? "#c62828" : "#ef8f00", text: marks }));
      }
      parent.appendChild(g);
    }
    function bezierPath(p) {
      if (!p.length) return "";
      var d = "M" + p[0][0] + "," + p[0][1];
      for (var i = 1; i + 2 < p.length; i += 3) d += "C" + p[i][0] + "," + p[i][1] + " " + p[i + 1][0] + "," + p[i + 1][1] + " " + p[i + 2][0] + "," + p[i + 2][1];
      if ((p.length - 1) % 3) for (var j = 1 + Math.floor((p.length - 1) / 3) * 3; j < p.length; j++) d += "L" + p[j][0] + "," + p[j][1];
      return d;
    }
    // A Bézier spline as a polyline (points along each cubic piece), so that moving the points
    // near an opened block bends the edge around it.
    function sampled(p) {
      var out = [p[0]];
      for (var i = 1; i + 2 < p.length; i += 3) {
        var a = p[i - 1], b = p[i], c = p[i + 1], d = p[i + 2];
        for (var k = 1; k <= 12; k++) {
          var t = k / 12, u = 1 - t;
          out.push([u * u * u * a[0] + 3 * u * u * t * b[0] + 3 * u * t * t * c[0] + t * t * t * d[0],
                    u * u * u * a[1] + 3 * u * u * t * b[1] + 3 * u * t * t * c[1] + t * t * t * d[1]]);
        }
      }
      return out;
    }
    // Points just above and below each opened block's centre line where the polyline crosses
    // it: there the drawing splits, and the piece between runs beside the opened frame.
    function cut(poly, ys) {
      if (!ys.length) return poly;
      var out = [poly[0]];
      for (var i = 1; i < poly.length; i++) {
        var a = poly[i - 1], b = poly[i], extra = [];
        ys.forEach(function (y) {
          if ((a[1] - y) * (b[1] - y) < 0) {
            [-0.5, 0.5].forEach(function (o) {
              var t = (y + o * Math.sign(b[1] - a[1]) - a[1]) / (b[1] - a[1]);
              if (t > 0 && t < 1) extra.push([t, [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]]);
            });
          }
        });
        extra.sort(function (p, q) { return p[0] - q[0]; });
        extra.forEach(function (x) { out.push(x[1]); });
        out.push(b);
      }
      return out;
    }
    // A polyline as a spline whose pieces are straight (control points at their ends).
    function asSpline(poly) {
      var out = [poly[0]];
      for (var i = 1; i < poly.length; i++) out.push(poly[i - 1], poly[i], poly[i]);
      return out;
    }
    function drawEdge(parent, e, pts, end, lp) {
      var g = s("g", { "class": "edge" });
      g.setAttribute("data-blob", String(e.v));
      g.appendChild(s("path", { d: bezierPath(pts) }));
      if (end && pts.length) {
        var a = pts[pts.length - 1], dx = end[0] - a[0], dy = end[1] - a[1], L = Math.sqrt(dx * dx + dy * dy) || 1;
        var ux = dx / L, uy = dy / L, w = 3.2;
        var bx = end[0] - ux * 7, by = end[1] - uy * 7;
        g.appendChild(s("polygon", { points: end[0] + "," + end[1] + " " + (bx - uy * w) + "," + (by + ux * w) + " " + (bx + uy * w) + "," + (by - ux * w) }));
      }
      if (lp && e.lab.length) {
        e.lab.forEach(function (t, i) {
          g.appendChild(s("text", { x: lp[0], y: lp[1] + (i - (e.lab.length - 1) / 2) * 11 + 3, "text-anchor": "middle", text: t }));
        });
      }
      parent.appendChild(g);
      edgeEls.push(g);
    }
    function portOf(bid, v, out) {
      var lay = st.layout.blocks[bid];
      for (var i = 0; i < lay.nodes.length; i++) {
        var n = lay.nodes[i];
        if (n.kind === "port" && n.v === v && !!n.out === out) return n;
      }
      return null;
    }
    function render() {
      clear(vp); nodeEls = {}; edgeEls = []; blockEls = {};
      geom = computeGeom();
      var top = st.layout.top, G = geom;
      var gEdges = s("g"), gNodes = s("g"), gFrames = s("g");
      vp.appendChild(gFrames); vp.appendChild(gEdges); vp.appendChild(gNodes);
      var byId = {};
      top.nodes.forEach(function (n) { byId[n.id] = n; });
      top.edges.forEach(function (e) {
        var pts = G.opened ? asSpline(cut(sampled(e.p), G.cuts).map(G.map)) : e.p.map(G.map);
        var end = e.e ? G.map(e.e) : null;
        var lp = e.lp ? G.map(e.lp) : null;
        var hn = byId[e.h], tn = byId[e.t];
        if (hn && hn.kind === "block" && expanded[hn.block] && pts.length) {
          var f = G.frames[hn.block], pt = portOf(hn.block, e.v, false);
          if (pt) { pts[pts.length - 1] = [f.ix + pt.x, f.iy + pt.y]; end = null; }
        }
        if (tn && tn.kind === "block" && expanded[tn.block] && pts.length) {
          var f2 = G.frames[tn.block], po = portOf(tn.block, e.v, true);
          if (po) pts[0] = [f2.ix + po.x, f2.iy + po.y];
        }
        drawEdge(gEdges, e, pts, end, lp);
      });
      top.nodes.forEach(function (n) {
        if (n.kind === "block" && expanded[n.block]) {
          var f = G.frames[n.block], lay = st.layout.blocks[n.block];
          var fg = s("g", { "class": "frame" });
          fg.setAttribute("data-frame", n.block);
          fg.appendChild(s("rect", { x: f.x, y: f.y, width: f.w, height: f.h, rx: 8 }));
          var title = s("text", { x: f.x + 8, y: f.y + 14, text: "▾ " + lay.name + (lay.stage ? "   (stage " + lay.stage + ")" : "") });
          title.setAttribute("data-fold", n.block);
          fg.appendChild(title);
          gFrames.appendChild(fg);
          blockEls[n.block] = fg;
          lay.edges.forEach(function (e) {
            drawEdge(gEdges, e, e.p.map(function (p) { return [f.ix + p[0], f.iy + p[1]]; }),
                     e.e ? [f.ix + e.e[0], f.iy + e.e[1]] : null, e.lp ? [f.ix + e.lp[0], f.iy + e.lp[1]] : null);
          });
          lay.nodes.forEach(function (m) { drawNode(gNodes, m, f.ix, f.iy, n.block); });
        } else {
          drawNode(gNodes, n, G.shiftX(n.x, n.y), G.shift(n.y), null);  // moved by the blocks opened
        }
      });
      applyHighlights();
      applyView();
    }

    // --- pan and zoom -----------------------------------------------------------------------
    function applyView() { vp.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")"); }
    function bounds() {
      var G = geom || computeGeom();
      return { x: G.minX - 10, y: -10, w: G.maxX - G.minX + 20, h: G.maxY + 20 };
    }
    function fit() {
      var r = svg.getBoundingClientRect(), b = bounds();
      if (!r.width || !r.height) return;
      var k = Math.min(r.width / b.w, r.height / b.h, 1.5);
      view.k = k;
      view.x = (r.width - b.w * k) / 2 - b.x * k;
      view.y = Math.max(0, (r.height - b.h * k) / 2) - b.y * k;
      applyView();
    }
    // Opening view: the whole width at a readable scale, from the top (a tall net scrolls).
    function initialView() {
      var r = svg.getBoundingClientRect(), b = bounds();
      if (!r.width || !r.height) return;
      var k = Math.min(r.width / b.w, r.height / b.h, 1.2);
      if (k < 0.55) k = Math.min(0.9, r.width / b.w);
      view.k = k;
      view.x = (r.width - b.w * k) / 2 - b.x * k;
      view.y = Math.max(0, (r.height - b.h * k) / 2) - b.y * k;
      applyView();
    }
    function zoomBy(f, cx, cy) {
      var r = svg.getBoundingClientRect();
      if (cx === undefined) { cx = r.width / 2; cy = r.height / 2; }
      var k = Math.max(0.02, Math.min(8, view.k * f));
      view.x = cx - (cx - view.x) * (k / view.k);
      view.y = cy - (cy - view.y) * (k / view.k);
      view.k = k;
      applyView();
    }
    function centerOn(x, y) {
      var r = svg.getBoundingClientRect();
      if (view.k < 0.6) view.k = 0.9;
      view.x = r.width / 2 - x * view.k;
      view.y = r.height / 2 - y * view.k;
      applyView();
    }
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = svg.getBoundingClientRect();
      zoomBy(Math.exp(-ev.deltaY * (ev.deltaMode ? 0.05 : 0.0015)), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false };
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; graphEl.classList.add("dragging"); }
      view.x = drag.vx + dx; view.y = drag.vy + dy;
      applyView();
    });
    window.addEventListener("mouseup", function () {
      graphEl.classList.remove("dragging");
      setTimeout(function () { drag = null; }, 0);
    });
    svg.addEventListener("click", function (ev) {
      if (drag && drag.moved) return;
      var t = ev.target;
      while (t && t !== svg) {
        if (t.getAttribute && t.getAttribute("data-fold") !== null) { toggleBlock(t.getAttribute("data-fold"), false); return; }
        if (t.getAttribute && t.getAttribute("data-layer") !== null) { select(+t.getAttribute("data-layer"), false); return; }
        if (t.getAttribute && t.getAttribute("data-block") !== null) { toggleBlock(t.getAttribute("data-block"), true); return; }
        if (t.getAttribute && t.getAttribute("data-blob") !== null) { selectBlob(+t.getAttribute("data-blob")); return; }
        t = t.parentNode;
      }
    });

    function toggleBlock(bid, open) {
      if (open) expanded[bid] = true; else delete expanded[bid];
      render();
    }
    function blockOfLayer(li) { return st.layers[li].block; }
    function layerPos(li) {
      var bid = blockOfLayer(li), G = geom, n;
      if (bid && expanded[bid]) {
        var f = G.frames[bid], lay = st.layout.blocks[bid];
        n = lay.nodes.find(function (m) { return m.layers && m.layers.indexOf(li) >= 0; });
        return n ? [f.ix + n.x, f.iy + n.y] : null;
      }
      var top = st.layout.top;
      n = top.nodes.find(function (m) { return m.layers && m.layers.indexOf(li) >= 0; });
      return n ? G.map([n.x, n.y]) : null;
    }

    // --- selection, highlights --------------------------------------------------------------
    function applyHighlights() {
      Array.prototype.forEach.call(vp.querySelectorAll(".sel, .selin, .match"), function (e) {
        e.classList.remove("sel"); e.classList.remove("selin"); e.classList.remove("match");
      });
      matchSet = {};
      matches.forEach(function (li) { matchSet[li] = 1; });
      Object.keys(matchSet).forEach(function (li) {
        var bid = blockOfLayer(+li);
        if (bid && !expanded[bid]) { if (blockEls[bid]) blockEls[bid].classList.add("match"); }
        else if (nodeEls[li]) nodeEls[li].classList.add("match");
      });
      edgeEls.forEach(function (g) {
        var v = +g.getAttribute("data-blob");
        if (blobMatches[v]) g.classList.add("match");
        if (selectedBlob !== null && st.blobs[v] && st.blobs[selectedBlob] && v === selectedBlob) g.classList.add("sel");
      });
      if (selected !== null) {
        var bid = blockOfLayer(selected);
        if (bid && !expanded[bid]) { if (blockEls[bid]) blockEls[bid].classList.add("selin"); }
        else if (nodeEls[selected]) nodeEls[selected].classList.add("sel");
      }
      renderRows();
    }
    function select(li, center) {
      selected = li; selectedBlob = null;
      var bid = blockOfLayer(li);
      if (center && bid && !expanded[bid]) { expanded[bid] = true; render(); }
      else applyHighlights();
      if (center) { var p = layerPos(li); if (p) centerOn(p[0], p[1]); }
      scrollToLayer(li);
      showLayer(li);
    }
    function selectBlob(v) {
      selectedBlob = v; selected = null;
      applyHighlights();
      showBlob(v);
    }

    // --- the details panel ------------------------------------------------------------------
    function layerLink(li) {
      return h("span", { cls: "link", text: st.layers[li].name, onclick: function () { select(li, true); } });
    }
    function blobLink(v) {
      var b = st.blobs[v];
      return h("span", null, h("span", { cls: "link", text: b.name, onclick: function () { selectBlob(v); } }),
               " " + dims(b.shape));
    }
    function list(items) {
      var span = h("span");
      items.forEach(function (it, i) { if (i) span.appendChild(document.createTextNode(", ")); span.appendChild(it); });
      if (!items.length) span.appendChild(h("span", { cls: "muted", text: "none" }));
      return span;
    }
    function showLayer(li) {
      var l = st.layers[li];
      clear(panel);
      panel.appendChild(h("h2", { text: l.name, id: "panel-title" }));
      var sub = h("div", { cls: "sub" }, l.type + (l.detail ? "  ·  " + l.detail : ""));
      if (l.unknown) sub.appendChild(h("span", { cls: "badge unknown", text: " not analysed " }));
      panel.appendChild(sub);
      if (l.states && DATA.states.length > 1 && l.states.length < DATA.states.length) {
        panel.appendChild(h("div", null, h("span", { cls: "badge diff", text: "only in " + l.states.map(function (k) { return DATA.states[k].label; }).join(", ") })));
      }
      if (l.diags.length) {
        panel.appendChild(h("h3", { text: "Diagnostics" }));
        panel.appendChild(diagList(l.diags.map(function (k) { return st.diagnostics[k]; }), function (d) { showSource(d.line); }));
      }
      panel.appendChild(h("h3", { text: "Shapes" }));
      var inShapes = h("div", { id: "panel-inputs" }), outShapes = h("div", { id: "panel-outputs" });
      l.inputs.forEach(function (v) { inShapes.appendChild(h("div", null, blobLink(v))); });
      l.outputs.forEach(function (v) { outShapes.appendChild(h("div", null, blobLink(v))); });
      panel.appendChild(kv([["input", l.inputs.length ? inShapes : "none"], ["output", l.outputs.length ? outShapes : "none"]]));
      if (l.formula.length) {
        panel.appendChild(h("h3", { text: "Output size" }));
        l.formula.forEach(function (f) { panel.appendChild(h("div", { cls: "formula", text: f })); });
      }
      panel.appendChild(h("h3", { text: "Cost" }));
      var pshapes = l.param_shapes.map(dims).join(", ");
      panel.appendChild(kv([
        ["receptive field", l.rf ? (l.rf.whole ? "whole input" : "size " + l.rf.size + ", stride " + l.rf.stride + ", centre " + l.rf.center) : "—"],
        ["parameters", l.params === null ? "?" : num(l.params) + (l.stat_params ? " (+" + num(l.stat_params) + " statistics)" : "")],
        pshapes ? ["parameter blobs", pshapes] : null,
        ["parameter memory", bytes(l.param_bytes)],
        ["MACs", l.macs === null || l.macs === undefined ? "?" : num(l.macs)],
        ["FLOPs", l.flops === null || l.flops === undefined ? "?" : num(l.flops)],
        ["activation memory", l.act_bytes === null || l.act_bytes === undefined ? "?" : bytes(l.act_bytes)]
      ]));
      if (l.fields.length) {
        panel.appendChild(h("h3", { text: "Parameters" }));
        var t = h("table", { cls: "kv", id: "panel-fields" });
        var group = null;
        l.fields.forEach(function (f) {
          if (f.group !== group) { group = f.group; t.appendChild(h("tr", null, h("td", { text: group, colspan: "2", style: "font-weight:600;color:#333" }))); }
          if (!f.name) { t.appendChild(h("tr", null, h("td", { text: "" }), h("td", { cls: "muted", text: f.value }))); return; }
          t.appendChild(h("tr", { cls: f.default ? "default" : "set" }, h("td", { text: f.name }), h("td", { text: f.value })));
        });
        panel.appendChild(t);
      }
      if (l.lines) {
        panel.appendChild(h("h3", { text: "Definition (lines " + l.lines[0] + "–" + l.lines[1] + ")" }));
        var pre = sourceBlock(l.lines[0], Math.min(l.lines[1], l.lines[0] + 400), -1);
        pre.id = "panel-source";
        panel.appendChild(pre);
      }
    }
    function showBlob(v) {
      var b = st.blobs[v];
      clear(panel);
      panel.appendChild(h("h2", { text: b.name + (b.version ? "  (version " + b.version + ")" : ""), id: "panel-title" }));
      panel.appendChild(h("div", { cls: "sub", text: "blob" + (b.undefined ? " · not produced by any layer" : "") }));
      panel.appendChild(kv([
        ["shape", dims(b.shape)],
        ["elements", b.shape ? num(b.shape.reduce(function (a, d) { return a * d; }, 1)) : "?"],
        ["receptive field", b.rf ? (b.rf.whole ? "whole input" : "size " + b.rf.size + ", stride " + b.rf.stride + ", centre " + b.rf.center) : "—"],
        ["producer", b.producer !== null ? layerLink(b.producer) : (b.undefined ? "none" : "net input")],
        ["consumers", list(b.consumers.map(layerLink))]
      ]));
    }
    function showOverview() {
      clear(panel);
      panel.appendChild(h("h2", { text: DATA.name || "net", id: "panel-title" }));
      panel.appendChild(h("div", { cls: "sub", text: st.state }));
      var inputs = st.blobs.filter(function (b) { return b.input && b.version === 0; });
      var t = st.totals;
      panel.appendChild(kv([
        ["file", DATA.file],
        ["layers", num(st.layers.length)],
        ["inputs", list(inputs.map(function (b) { return blobLink(st.blobs.indexOf(b)); }))],
        ["parameters", num(t.params) + (t.stat_params ? " (+" + num(t.stat_params) + " statistics)" : "")],
        ["parameter memory", bytes(t.param_bytes)],
        ["MACs", si(t.macs) + (st.batch && st.batch > 1 ? "  (" + si(t.macs / st.batch) + " per sample)" : "")],
        ["FLOPs", si(t.flops)],
        ["activation memory", bytes(t.act_bytes)],
        ["batch", st.batch === null ? "?" : String(st.batch)]
      ]));
      if (st.incomplete.length) {
        panel.appendChild(h("p", null, h("span", { cls: "badge warning", text: "incomplete" }),
          " " + st.incomplete.length + " layer(s) could not be analysed, starting at ", layerLink(st.incomplete[0]),
          "; the totals leave them out."));
      }
      if (DATA.states.length > 1) {
        var diff = st.layers.filter(function (l) { return l.states.length < DATA.states.length; }).length;
        panel.appendChild(h("p", { cls: "muted", text: diff + " layer(s) of this state are not in every state (dashed purple)." }));
      }
      panel.appendChild(h("h3", { text: "Diagnostics (" + st.diagnostics.length + (st.dropped ? ", " + st.dropped + " more not kept" : "") + ")" }));
      if (!st.diagnostics.length) panel.appendChild(h("div", { cls: "muted", text: "none" }));
      var ul = diagList(st.diagnostics, function (d) { if (d.layer !== null) select(d.layer, true); else showSource(d.line); });
      ul.id = "diagnostics";
      panel.appendChild(ul);
    }
    function showSource(line) {
      clear(panel);
      panel.appendChild(h("h2", { text: DATA.file, id: "panel-title" }));
      var pre = sourceBlock(1, sourceLines.length, line || -1);
      pre.style.maxHeight = "none";
      panel.appendChild(pre);
      if (line) {
        var target = pre.querySelector('[data-line="' + line + '"]');
        if (target) panel.scrollTop = target.offsetTop - panel.clientHeight / 3;
      }
    }
    overviewBtn.addEventListener("click", function () { selected = null; selectedBlob = null; applyHighlights(); showOverview(); });
    sourceBtn.addEventListener("click", function () { showSource(selected !== null && st.layers[selected].lines ? st.layers[selected].lines[0] : null); });
    tableBtn.addEventListener("click", function () {
      tableWrap.classList.toggle("hidden");
      tableBtn.className = tableWrap.classList.contains("hidden") ? "" : "on";
      fit();
    });
    expandBtn.addEventListener("click", function () {
      Object.keys(st.layout.blocks).forEach(function (b) { expanded[b] = true; });
      render(); fit();
    });
    foldBtn.addEventListener("click", function () { expanded = {}; render(); fit(); });

    // --- the table --------------------------------------------------------------------------
    var COLS = [
      ["#", function (l, i) { return i; }, "num"],
      ["layer", function (l) { return l.name; }],
      ["type", function (l) { return l.type; }],
      ["bottoms", function (l) { return l.inputs.map(function (v) { return st.blobs[v].name; }).join(", "); }],
      ["tops", function (l) { return l.outputs.map(function (v) { return st.blobs[v].name; }).join(", "); }],
      ["input", function (l) { return l.inputs.length ? dims(st.blobs[l.inputs[0]].shape) : ""; }],
      ["output", function (l) { return l.outputs.map(function (v) { return dims(st.blobs[v].shape); }).join("; "); }],
      ["RF", function (l) { return l.rf ? l.rf.text : ""; }],
      ["params", function (l) { return l.params; }, "num", num],
      ["param mem", function (l) { return l.param_bytes; }, "num", function (n) { return n ? bytes(n) : ""; }],
      ["MACs", function (l) { return l.macs; }, "num", function (n) { return n === null || n === undefined ? "?" : n ? si(n) : ""; }],
      ["FLOPs", function (l) { return l.flops; }, "num", function (n) { return n === null || n === undefined ? "?" : n ? si(n) : ""; }],
      ["activations", function (l) { return l.act_bytes; }, "num", function (n) { return n === null || n === undefined ? "?" : n ? bytes(n) : ""; }]
    ];
    // The table draws only the rows in view (a thousand-layer net would otherwise cost the
    // browser most of a second to lay out): `order` is the sorted, filtered list of layers.
    var ROWH = 22;
    var tbody = null, sortCol = 0, sortDir = 1, thead = null, order = [], matchSet = {};
    var rowCache = {};
    function buildTable() {
      clear(tableScroll); rowCache = {};
      var table = h("table", { cls: "layers", id: "layer-table" });
      var colgroup = h("colgroup");
      var widths = [44, 200, 110, 160, 160, 120, 130, 80, 90, 86, 76, 76, 90];
      widths.forEach(function (w) { colgroup.appendChild(h("col", { style: "width:" + w + "px" })); });
      table.appendChild(colgroup);
      thead = h("tr");
      COLS.forEach(function (c, k) {
        var th = h("th", { cls: c[2] || "", text: c[0], onclick: function () { sortBy(k); } });
        th.setAttribute("data-col", c[0]);
        thead.appendChild(th);
      });
      table.appendChild(h("thead", null, thead));
      tbody = h("tbody");
      tbody.addEventListener("click", function (ev) {
        var tr = ev.target.closest("tr");
        if (tr && tr.getAttribute("data-layer") !== null) select(+tr.getAttribute("data-layer"), true);
      });
      table.appendChild(tbody);
      var t = st.totals;
      var foot = h("tr", null, h("td"), h("td", { text: "total" }), h("td", { text: st.layers.length + " layers" }),
                   h("td"), h("td"), h("td"), h("td"), h("td"),
                   h("td", { cls: "num", text: num(t.params) }), h("td", { cls: "num", text: bytes(t.param_bytes) }),
                   h("td", { cls: "num", text: si(t.macs) }), h("td", { cls: "num", text: si(t.flops) }),
                   h("td", { cls: "num", text: bytes(t.act_bytes) }));
      table.appendChild(h("tfoot", null, foot));
      tableScroll.appendChild(table);
      sortCol = 0; sortDir = 1;
      order = st.layers.map(function (l, i) { return i; });
      markSort();
      filterRows();
    }
    function makeRow(i) {
      if (rowCache[i]) return rowCache[i];
      var l = st.layers[i], tr = document.createElement("tr");
      tr.setAttribute("data-layer", String(i));
      layerClass(i).forEach(function (c) { tr.classList.add(c); });
      COLS.forEach(function (c) {
        var v = c[1](l, i), td = document.createElement("td");
        if (c[2]) td.className = c[2];
        td.textContent = c[3] ? c[3](v) : (v === null || v === undefined ? "" : String(v));
        if (!c[2]) td.title = td.textContent;
        tr.appendChild(td);
      });
      rowCache[i] = tr;
      return tr;
    }
    function spacer(n) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      tr.className = "spacer";
      td.colSpan = COLS.length;
      td.style.height = (n * ROWH) + "px";
      tr.appendChild(td);
      return tr;
    }
    function renderRows() {
      if (!tbody) return;
      var top = tableScroll.scrollTop, hgt = tableScroll.clientHeight || 400;
      var first = Math.max(0, Math.floor(top / ROWH) - 10), last = Math.min(order.length, first + Math.ceil(hgt / ROWH) + 20);
      var frag = document.createDocumentFragment();
      if (first) frag.appendChild(spacer(first));
      for (var k = first; k < last; k++) {
        var li = order[k], tr = makeRow(li);
        tr.classList.toggle("sel", li === selected);
        tr.classList.toggle("match", !!matchSet[li]);
        frag.appendChild(tr);
      }
      if (last < order.length) frag.appendChild(spacer(order.length - last));
      clear(tbody);
      tbody.appendChild(frag);
    }
    tableScroll.addEventListener("scroll", function () { window.requestAnimationFrame(renderRows); });
    function scrollToLayer(li) {
      var k = order.indexOf(li);
      renderRows();  // the full height first: the browser clamps scrollTop to what is there
      if (k >= 0) {
        var y = k * ROWH, top = tableScroll.scrollTop, hgt = tableScroll.clientHeight;
        if (y < top + ROWH || y > top + hgt - 3 * ROWH) tableScroll.scrollTop = Math.max(0, y - hgt / 2);
      }
      renderRows();
    }
    function markSort() {
      Array.prototype.forEach.call(thead.children, function (th, k) {
        th.classList.toggle("asc", k === sortCol && sortDir > 0);
        th.classList.toggle("desc", k === sortCol && sortDir < 0);
      });
    }
    function sorted() {
      var get = COLS[sortCol][1], numeric = COLS[sortCol][2] === "num";
      var idx = st.layers.map(function (l, i) { return i; });
      idx.sort(function (a, b) {
        var x = get(st.layers[a], a), y = get(st.layers[b], b);
        if (numeric) {
          var nx = x === null || x === undefined, ny = y === null || y === undefined;
          if (nx || ny) return nx === ny ? a - b : nx ? 1 : -1;
          return (x - y) * sortDir || a - b;
        }
        return String(x).localeCompare(String(y)) * sortDir || a - b;
      });
      return idx;
    }
    function sortBy(k) {
      if (sortCol === k) sortDir = -sortDir; else { sortCol = k; sortDir = COLS[k][2] === "num" && k ? -1 : 1; }
      markSort();
      tableScroll.scrollTop = 0;
      filterRows(true);
    }
    function filterRows(fromTop) {
      var q = tableFilter.value.trim().toLowerCase();
      order = sorted().filter(function (i) {
        var l = st.layers[i];
        return !q || l.name.toLowerCase().indexOf(q) >= 0 || l.type.toLowerCase().indexOf(q) >= 0;
      });
      tableInfo.textContent = order.length === st.layers.length ? st.layers.length + " layers" : order.length + " of " + st.layers.length + " layers";
      tableInfo.setAttribute("data-rows", String(order.length));
      if (selected !== null && fromTop !== true) scrollToLayer(selected); else renderRows();
    }
    tableFilter.addEventListener("input", filterRows);

    // --- search -----------------------------------------------------------------------------
    function runSearch() {
      query = search.value.trim().toLowerCase();
      matches = []; blobMatches = {}; matchAt = -1;
      if (query) {
        st.layers.forEach(function (l, i) {
          if (l.name.toLowerCase().indexOf(query) >= 0 || l.type.toLowerCase().indexOf(query) >= 0) matches.push(i);
        });
        st.blobs.forEach(function (b, v) { if (b.name.toLowerCase().indexOf(query) >= 0) blobMatches[v] = 1; });
      }
      var nb = Object.keys(blobMatches).length;
      countEl.textContent = query ? matches.length + " layer" + (matches.length === 1 ? "" : "s") + (nb ? ", " + nb + " blob" + (nb === 1 ? "" : "s") : "") : "";
      applyHighlights();
    }
    var searchTimer = null;
    search.addEventListener("input", function () { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 120); });
    search.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter") return;
      clearTimeout(searchTimer); runSearch();
      if (!matches.length) return;
      matchAt = (matchAt + 1) % matches.length;
      select(matches[matchAt], true);
    });

    setState(0);
    window.netdefReadyMs = performance.now();  // read by benchmarks/view.py
    document.body.setAttribute("data-ready", "1");
  }

  // ============================================================================================
  // solvers
  // ============================================================================================
  function solverPage() {
    var sch = DATA.schedule, doc = DATA.summary;
    document.body.classList.add("solver");
    var header = h("header", null, h("span", { cls: "title", text: "solver " + DATA.name, id: "solver-title" }),
                   h("span", { cls: "file", text: baseName(DATA.file), title: DATA.file }));
    var nd = DATA.diagnostics.filter(function (d) { return d.severity === "error"; }).length;
    var nw = DATA.diagnostics.length - nd;
    header.appendChild(h("span", { cls: "badge " + (nd ? "error" : nw ? "warning" : "ok"),
                                   text: nd ? nd + " error(s)" : nw ? nw + " warning(s)" : "no problems" }));
    var plotEl = h("div", { id: "plot" });
    var tip = h("div", { id: "tip" });
    plotEl.appendChild(tip);
    var panel = h("div", { id: "panel" });
    document.body.appendChild(header);
    document.body.appendChild(h("main", null, h("div", { id: "left" }, plotEl), panel));

    var lr = doc.learning_rate;
    panel.appendChild(h("h2", { text: doc.optimizer.type + ", lr_policy \"" + lr.lr_policy + "\"" }));
    panel.appendChild(h("div", { cls: "formula", text: "rate = " + lr.formula }));
    panel.appendChild(h("h3", { text: "Summary" }));
    panel.appendChild(h("pre", { cls: "summary", text: DATA.text, id: "solver-summary" }));
    if (DATA.diagnostics.length) {
      panel.appendChild(h("h3", { text: "Diagnostics" }));
      panel.appendChild(diagList(DATA.diagnostics, function () {}));
    }
    panel.appendChild(h("h3", { text: "Definition" }));
    panel.appendChild(sourceBlock(1, sourceLines.length, -1));

    var svg = s("svg", { id: "lr-plot" });
    plotEl.insertBefore(svg, tip);
    var pts = sch.points.filter(function (p) { return p[1] !== null && (!sch.log || p[1] > 0); });
    function draw() {
      clear(svg);
      var r = plotEl.getBoundingClientRect(), W = Math.max(300, r.width), H = Math.max(200, r.height);
      var L = 80, R = 24, T = 36, B = 48, pw = W - L - R, ph = H - T - B;
      svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      if (!pts.length) {
        svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle",
                                    text: sch.max_iter ? "no finite learning rate to plot" : "max_iter is 0: no iterations" }));
        return;
      }
      var last = Math.max(1, sch.points[sch.points.length - 1][0]);
      var ys = pts.map(function (p) { return sch.log ? Math.log10(p[1]) : p[1]; });
      var lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
      if (sch.log) { lo = Math.floor(lo + 1e-6); hi = Math.ceil(hi - 1e-6); if (hi <= lo) hi = lo + 1; }
      else { lo = Math.min(0, lo); hi = hi > 0 ? hi * 1.08 : (hi === lo ? lo + 1 : hi); if (hi === lo) hi = lo + 1; }
      function X(i) { return L + i / last * pw; }
      function Y(v) { var t = ((sch.log ? Math.log10(v) : v) - lo) / (hi - lo); return T + ph * (1 - t); }
      var k, y;
      if (sch.log) {
        for (k = lo; k <= hi; k++) {
          y = T + ph * (1 - (k - lo) / (hi - lo));
          svg.appendChild(s("line", { x1: L, x2: L + pw, y1: y, y2: y, "class": "grid" }));
          svg.appendChild(s("text", { x: L - 6, y: y + 4, "text-anchor": "end", text: "1e" + k }));
        }
      } else {
        var step = niceStep(hi - lo);
        for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
          y = Y(v);
          svg.appendChild(s("line", { x1: L, x2: L + pw, y1: y, y2: y, "class": "grid" }));
          svg.appendChild(s("text", { x: L - 6, y: y + 4, "text-anchor": "end", text: String(+v.toPrecision(6)) }));
        }
      }
      var xs = niceStep(last);
      for (var it = 0; it <= last + 1e-9; it += xs) {
        var x = X(it);
        svg.appendChild(s("line", { x1: x, x2: x, y1: T, y2: T + ph, "class": "grid" }));
        svg.appendChild(s("text", { x: x, y: T + ph + 16, "text-anchor": "middle", text: shortInt(it) }));
      }
      svg.appendChild(s("path", { d: "M" + L + "," + T + "V" + (T + ph) + "H" + (L + pw), "class": "axis", fill: "none" }));
      svg.appendChild(s("text", { x: L + pw / 2, y: H - 10, "text-anchor": "middle", text: "iteration" }));
      svg.appendChild(s("text", { x: L, y: T - 12, text: "learning rate" + (sch.log ? " (log scale)" : "") }));
      sch.changes.forEach(function (c) {
        if (c[1] === null || (sch.log && c[1] <= 0) || sch.changes.length > 200) return;
        svg.appendChild(s("line", { x1: X(c[0]), x2: X(c[0]), y1: T, y2: T + ph, "class": "change" }));
      });
      var d = "", prev = null;
      pts.forEach(function (p, i) {
        var px = X(p[0]), py = Y(p[1]);
        if (!i) d = "M" + px.toFixed(1) + "," + py.toFixed(1);
        else {
          if (sch.stepped && prev !== null && p[1] !== prev) d += "H" + px.toFixed(1);
          d += "L" + px.toFixed(1) + "," + py.toFixed(1);
        }
        prev = p[1];
      });
      svg.appendChild(s("path", { d: d, "class": "curve", id: "lr-curve" }));
      var cursor = s("line", { y1: T, y2: T + ph, "class": "cursor", visibility: "hidden" });
      var dot = s("circle", { r: 4, "class": "dot", visibility: "hidden" });
      svg.appendChild(cursor); svg.appendChild(dot);
      var hit = s("rect", { x: L, y: T, width: pw, height: ph, fill: "transparent", id: "lr-hit" });
      svg.appendChild(hit);
      hit.addEventListener("mousemove", function (ev) {
        var rr = svg.getBoundingClientRect(), scale = W / rr.width;
        var mx = (ev.clientX - rr.left) * scale, iter = Math.round((mx - L) / pw * last);
        iter = Math.max(0, Math.min(last, iter));
        var p = rateAt(iter);
        if (!p) return;
        var px = X(p[0]), py = Y(p[1]);
        cursor.setAttribute("x1", px); cursor.setAttribute("x2", px); cursor.setAttribute("visibility", "visible");
        dot.setAttribute("cx", px); dot.setAttribute("cy", py); dot.setAttribute("visibility", "visible");
        tip.textContent = "iteration " + p[0].toLocaleString("en-US") + " · rate " + fmtRate(p[1]);
        tip.style.display = "block";
        tip.style.left = Math.min(px / scale + 12, rr.width - 220) + "px";
        tip.style.top = (py / scale - 30) + "px";
      });
      hit.addEventListener("mouseleave", function () {
        tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); dot.setAttribute("visibility", "hidden");
      });
    }
    // Stepped schedules are constant between the points Python computed (every change is one of
    // them), so any iteration's rate is exact; continuous ones snap to the nearest computed point.
    function rateAt(iter) {
      var a = 0, b = pts.length - 1;
      while (a < b) { var m = (a + b + 1) >> 1; if (pts[m][0] <= iter) a = m; else b = m - 1; }
      if (sch.stepped) return [iter, pts[a][1]];
      var best = pts[a];
      if (a + 1 < pts.length && Math.abs(pts[a + 1][0] - iter) < Math.abs(best[0] - iter)) best = pts[a + 1];
      return best;
    }
    function fmtRate(x) { return String(+x.toPrecision(6)); }
    function niceStep(span) {
      if (span <= 0) return 1;
      var raw = span / 6, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
      return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    }
    function shortInt(v) {
      if (v >= 1e6 && v % 1e5 === 0) return v / 1e6 + "M";
      if (v >= 1e3 && v % 100 === 0) return v / 1e3 + "k";
      return String(+v.toPrecision(6));
    }
    draw();
    window.addEventListener("resize", draw);
    window.netdefReadyMs = performance.now();  // read by benchmarks/view.py
    document.body.setAttribute("data-ready", "1");
  }
})();
