/*
 * Kiln chart — a small, dependency-free canvas line chart for the Kiln web UI.
 *
 *   const chart = KilnChart.create(container, options);
 *   chart.update(options);   // same option shape; keeps the zoom unless options.resetZoom
 *   chart.destroy();
 *
 * options = {
 *   series: [{ name, color, points: [[x, y], ...] }],  // points sorted by x; y NaN/null = gap
 *   xKind: "step" | "time" | "relative",               // step number | Unix ms | seconds since start
 *   yLog: false, smoothing: 0 (0..0.99), height: 320, title: "",
 * }
 *
 * Test hooks: chart.canvas, chart.drawnPoints(), container.dataset.rendered = "1" after each render.
 * Theme: CSS custom properties --chart-bg, --chart-fg, --chart-grid, --chart-font (read at draw
 * time); dispatch a "kiln-theme-change" event on document to redraw after changing them.
 */
(function () {
  "use strict";

  var DEFAULT_HEIGHT = 320;
  // Width of one decimation bin in CSS pixels. Each bin keeps its first, min, max and last
  // point (<= 4 vertices), i.e. at most 2 vertices per pixel column per line.
  var BIN_PX = 2;
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var FALLBACK = {
    bg: "#ffffff",
    fg: "#1f2328",
    grid: "#e5e7eb",
    font: "12px system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif",
  };
  var CSS_FONT = "var(--chart-font, 12px system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif)";
  var SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN, DAY = 24 * HOUR;
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var TIME_STEPS = [SEC, 2 * SEC, 5 * SEC, 10 * SEC, 15 * SEC, 30 * SEC,
    MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY];
  var REL_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  var UNITS = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

  /* ------------------------------------------------------------------ helpers */

  function clamp(v, lo, hi) { return v < lo ? lo : v > hi ? hi : v; }
  function pad2(n) { return n < 10 ? "0" + n : String(n); }
  function isNum(v) { return typeof v === "number" && v - v === 0; } // finite number

  function lowerBound(a, n, v) { // first index with a[i] >= v
    var lo = 0, hi = n;
    while (lo < hi) { var m = (lo + hi) >>> 1; if (a[m] < v) lo = m + 1; else hi = m; }
    return lo;
  }
  function upperBound(a, n, v) { // first index with a[i] > v
    var lo = 0, hi = n;
    while (lo < hi) { var m = (lo + hi) >>> 1; if (a[m] <= v) lo = m + 1; else hi = m; }
    return lo;
  }

  // "1.2300" -> "1.23", "2.0" -> "2", "3.40e-5" -> "3.4e-5", "1e+15" -> "1e15"
  function stripZeros(s) {
    var mant = s, exp = "", e = s.indexOf("e");
    if (e >= 0) { mant = s.slice(0, e); exp = s.slice(e).replace("+", ""); }
    if (mant.indexOf(".") >= 0) mant = mant.replace(/0+$/, "").replace(/\.$/, "");
    if (mant === "-0") mant = "0";
    return mant + exp;
  }

  function thousands(v) {
    var r = Math.round(v);
    var s = String(Math.abs(r));
    if (s.indexOf("e") >= 0) return String(r);
    return (r < 0 ? "-" : "") + s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function decimalsFor(step) { return Math.max(0, -Math.floor(Math.log10(step) + 1e-9)); }

  // Compact axis label: 1.2k, 3.4M, 0.05, 3.4e-5 ...
  function formatCompact(v, step, useExp) {
    var a = Math.abs(v);
    if (a === 0 || a < step * 1e-6) return "0";
    if (useExp) {
      var digits = clamp(Math.floor(Math.log10(a) + 1e-9) - Math.floor(Math.log10(step) + 1e-9), 0, 6);
      return stripZeros(v.toExponential(digits));
    }
    for (var i = 0; i < UNITS.length; i++) {
      var u = UNITS[i][0];
      if (a >= u && step >= u / 1000) {
        return stripZeros((v / u).toFixed(clamp(decimalsFor(step / u), 0, 3))) + UNITS[i][1];
      }
    }
    return stripZeros(v.toFixed(clamp(decimalsFor(step), 0, 12)));
  }

  function useExpFor(maxAbs) { return maxAbs >= 1e15 || (maxAbs > 0 && maxAbs < 1e-3); }

  // Tooltip value: a few significant digits, exponent for tiny/huge magnitudes.
  function formatValue(v) {
    if (!isNum(v)) return "\u2014";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e9)) return stripZeros(v.toExponential(4));
    return String(Number(v.toPrecision(6)));
  }

  function formatDuration(v, maxParts, secDecimals) {
    if (!isNum(v)) return "\u2014";
    var neg = v < 0;
    var s = Number(Math.abs(v).toFixed(secDecimals));
    var d = Math.floor(s / 86400); s -= d * 86400;
    var h = Math.floor(s / 3600); s -= h * 3600;
    var m = Math.floor(s / 60); s -= m * 60;
    s = Number(s.toFixed(secDecimals));
    var parts = [];
    if (d) parts.push(d + "d");
    if (h) parts.push(h + "h");
    if (m) parts.push(m + "min");
    if (s) parts.push(stripZeros(s.toFixed(secDecimals)) + "s");
    if (!parts.length) return "0s";
    return (neg ? "-" : "") + parts.slice(0, maxParts).join(" ");
  }

  function formatDateTime(t) {
    var d = new Date(t);
    if (isNaN(d.getTime())) return "\u2014";
    var s = d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
      pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
    var ms = d.getMilliseconds();
    if (ms) s += "." + String(ms).padStart(3, "0");
    return s;
  }

  function formatX(kind, x) {
    if (kind === "time") return formatDateTime(x);
    if (kind === "relative") return formatDuration(x, 4, 3);
    return Number.isInteger(x) ? thousands(x) : formatValue(x);
  }

  /* -------------------------------------------------------------------- ticks */

  function niceStep(raw) {
    if (!(raw > 0) || !isFinite(raw)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function stepTicks(a, b, step) {
    var vals = [];
    var i0 = Math.ceil(a / step - 1e-9), i1 = Math.floor(b / step + 1e-9);
    for (var i = i0; i <= i1 && vals.length < 500; i++) vals.push(i * step);
    return { step: step, vals: vals };
  }

  function linearTicks(a, b, target, minStep) {
    var step = niceStep((b - a) / Math.max(1, target));
    if (minStep && step < minStep) step = minStep;
    return stepTicks(a, b, step);
  }

  // Ticks for a log axis; lo/hi are log10 of the bounds. Returns real values.
  function logTicks(lo, hi, target) {
    var e0 = Math.floor(lo), e1 = Math.ceil(hi);
    var span = hi - lo;
    var e, vals;
    if (span > target) {
      var k = Math.ceil(span / target);
      vals = [];
      for (e = Math.ceil(lo); e <= Math.floor(hi); e++) if (e % k === 0) vals.push(Number("1e" + e));
      return { vals: vals, perTick: true };
    }
    var gen = function (mants) {
      var out = [];
      for (var ee = e0; ee <= e1; ee++) {
        for (var j = 0; j < mants.length; j++) {
          var v = Number(mants[j] + "e" + ee);
          var l = Math.log10(v);
          if (l >= lo - 1e-9 && l <= hi + 1e-9) out.push(v);
        }
      }
      return out;
    };
    vals = gen([1]);
    if (vals.length < 3) {
      var v125 = gen([1, 2, 5]);
      if (v125.length <= target + 1) vals = v125;
      if (vals.length < 3) {
        var v19 = gen([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        if (v19.length <= target + 1) vals = v19;
      }
    }
    if (vals.length >= 2) return { vals: vals, perTick: true };
    // Less than a decade: ordinary nice ticks in value space.
    var t = linearTicks(Math.pow(10, lo), Math.pow(10, hi), target);
    return { vals: t.vals.filter(function (v) { return v > 0; }), step: t.step, perTick: false };
  }

  function timeTicks(a, b, target) {
    var raw = (b - a) / Math.max(1, target);
    var vals = [], d, t, i;
    if (raw < SEC) {
      var lt = linearTicks(a, b, target, 1);
      lt.unit = "ms";
      return lt;
    }
    var step = null;
    for (i = 0; i < TIME_STEPS.length; i++) if (TIME_STEPS[i] >= raw) { step = TIME_STEPS[i]; break; }
    if (step !== null && step < DAY) {
      d = new Date(a); d.setHours(0, 0, 0, 0);
      var base = d.getTime();
      for (t = base + Math.ceil((a - base) / step) * step; t <= b && vals.length < 500; t += step) vals.push(t);
      return { step: step, vals: vals, unit: step < MIN ? "s" : "min" };
    }
    if (step !== null) {
      var days = step / DAY;
      d = new Date(a); d.setHours(0, 0, 0, 0);
      if (d.getTime() < a) d.setDate(d.getDate() + 1);
      for (; d.getTime() <= b && vals.length < 500; d.setDate(d.getDate() + days)) vals.push(d.getTime());
      return { step: step, vals: vals, unit: "day" };
    }
    var months = 0, ms = [1, 2, 3, 6];
    for (i = 0; i < ms.length; i++) if (ms[i] * 30 * DAY >= raw) { months = ms[i]; break; }
    if (months) {
      d = new Date(a); d.setHours(0, 0, 0, 0); d.setDate(1);
      if (d.getTime() < a) d.setMonth(d.getMonth() + 1);
      while (d.getMonth() % months) d.setMonth(d.getMonth() + 1);
      for (; d.getTime() <= b && vals.length < 500; d.setMonth(d.getMonth() + months)) vals.push(d.getTime());
      return { step: months * 30 * DAY, vals: vals, unit: "month" };
    }
    var years = Math.max(1, niceStep(raw / (365 * DAY)));
    d = new Date(a); d.setHours(0, 0, 0, 0); d.setMonth(0, 1);
    if (d.getTime() < a) d.setFullYear(d.getFullYear() + 1);
    while (d.getFullYear() % years) d.setFullYear(d.getFullYear() + 1);
    for (; d.getTime() <= b && vals.length < 500; d.setFullYear(d.getFullYear() + years)) vals.push(d.getTime());
    return { step: years * 365 * DAY, vals: vals, unit: "year" };
  }

  function timeLabel(t, unit) {
    var d = new Date(t);
    var midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0 && d.getMilliseconds() === 0;
    var date = MONTHS[d.getMonth()] + " " + d.getDate();
    switch (unit) {
      case "ms":
        return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds()) + "." +
          String(d.getMilliseconds()).padStart(3, "0");
      case "s":
        return midnight ? date : pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
      case "min":
        return midnight ? date : pad2(d.getHours()) + ":" + pad2(d.getMinutes());
      case "day":
        return date;
      case "month":
        return d.getMonth() === 0 ? String(d.getFullYear()) : MONTHS[d.getMonth()];
      default:
        return String(d.getFullYear());
    }
  }

  function relTicks(a, b, target) {
    var raw = (b - a) / Math.max(1, target);
    var step = null;
    if (raw < 1) step = niceStep(raw);
    else for (var i = 0; i < REL_STEPS.length; i++) if (REL_STEPS[i] >= raw) { step = REL_STEPS[i]; break; }
    if (step === null) step = niceStep(raw / 86400) * 86400;
    return stepTicks(a, b, step);
  }

  // Chooses x ticks whose labels do not overlap.
  function xTicks(kind, a, b, pw, ctx) {
    var gen, fmt;
    if (kind === "time") {
      gen = timeTicks;
      fmt = function (v, t) { return timeLabel(v, t.unit); };
    } else if (kind === "relative") {
      gen = relTicks;
      fmt = function (v, t) { return formatDuration(v, 2, t.step < 1 ? clamp(decimalsFor(t.step), 0, 6) : 0); };
    } else {
      gen = function (lo, hi, target) { return linearTicks(lo, hi, target, 1); };
      fmt = function (v, t) { return t.step >= 1 ? thousands(v) : formatValue(v); };
    }
    var best = { vals: [], labels: [] };
    var scale = pw / (b - a);
    for (var target = Math.max(2, Math.floor(pw / 60)); target >= 1; target--) {
      var t = gen(a, b, target);
      var labels = t.vals.map(function (v) { return fmt(v, t); });
      best = { vals: t.vals, labels: labels };
      var ok = true;
      for (var i = 1; i < labels.length && ok; i++) {
        var gap = (t.vals[i] - t.vals[i - 1]) * scale;
        var need = (ctx.measureText(labels[i]).width + ctx.measureText(labels[i - 1]).width) / 2 + 12;
        if (gap < need) ok = false;
      }
      if (ok) break;
    }
    return best;
  }

  /* --------------------------------------------------------------------- data */

  // Converts points[from..] into typed arrays, appending to `into` (a previous result for the
  // same, since grown, array) when given. Falls back to a full conversion if x goes backwards.
  function extract(points, into, from) {
    var len = points.length;
    var xs, ys, n = 0, finite = 0, positive = 0, prev = -Infinity, start = 0;
    if (into) {
      n = into.n; finite = into.finite; positive = into.positive; start = from;
      prev = n ? into.xs[n - 1] : -Infinity;
      var need = n + (len - from);
      if (into.xs.length >= need) { xs = into.xs; ys = into.ys; }
      else {
        var capacity = Math.max(need, Math.ceil(into.xs.length * 1.5));
        xs = new Float64Array(capacity); ys = new Float64Array(capacity);
        xs.set(into.xs.subarray(0, n)); ys.set(into.ys.subarray(0, n));
      }
    } else {
      xs = new Float64Array(len); ys = new Float64Array(len);
    }
    var sorted = true;
    for (var i = start; i < len; i++) {
      var p = points[i];
      if (p == null) continue;
      var x = +p[0];
      if (x - x !== 0) continue; // non-finite x cannot be placed
      var y = p[1];
      y = y == null ? NaN : +y;
      if (y - y !== 0) y = NaN; // NaN, Infinity -> gap
      else { finite++; if (y > 0) positive++; }
      if (x < prev) sorted = false;
      prev = x;
      xs[n] = x; ys[n] = y; n++;
    }
    if (!sorted && into) return extract(points, null, 0);
    if (!sorted) {
      var idx = new Array(n);
      for (var k = 0; k < n; k++) idx[k] = k;
      idx.sort(function (a, b) { return xs[a] - xs[b] || a - b; });
      var xs2 = new Float64Array(n), ys2 = new Float64Array(n);
      for (k = 0; k < n; k++) { xs2[k] = xs[idx[k]]; ys2[k] = ys[idx[k]]; }
      xs = xs2; ys = ys2;
    }
    return { xs: xs, ys: ys, n: n, finite: finite, positive: positive, smW: -1, sm: null };
  }

  // Debiased exponential moving average, as TensorBoard / MLflow smooth scalar plots.
  function ema(ys, n, w) {
    var out = new Float64Array(n);
    var last = 0, wPow = 1;
    for (var i = 0; i < n; i++) {
      var y = ys[i];
      if (y !== y) { out[i] = NaN; continue; }
      last = last * w + (1 - w) * y;
      wPow *= w;
      out[i] = last / (1 - wPow);
    }
    return out;
  }

  /*
   * Decimates the points of [x0, x1] (plus one neighbour on each side so lines run to the
   * edges) into bins of BIN_PX pixels, keeping the first, min, max and last point of each bin
   * in index order. Returns { v: Float64Array [px, ty, segmentStart] * k, k }, px relative to
   * the plot's left edge and ty = y (or log10 y).
   */
  function decimate(xs, ys, n, x0, x1, pw, log) {
    var res = { v: null, k: 0 };
    if (!n || !(pw > 0)) return res;
    var lo = lowerBound(xs, n, x0), hi = upperBound(xs, n, x1) - 1;
    var i0 = Math.max(0, lo - 1), i1 = Math.min(n - 1, hi + 1);
    if (i1 < i0) return res;
    var sx = pw / (x1 - x0);
    var binScale = sx / BIN_PX;
    var cap = 4 * (Math.ceil(pw / BIN_PX) + 8);
    var v = new Float64Array(cap * 3);
    var k = 0, newSeg = true;

    function push(i) {
      if (k >= cap) {
        cap *= 2;
        var nv = new Float64Array(cap * 3);
        nv.set(v);
        v = nv;
      }
      var o = k * 3;
      v[o] = (xs[i] - x0) * sx;
      v[o + 1] = log ? Math.log10(ys[i]) : ys[i];
      v[o + 2] = newSeg ? 1 : 0;
      newSeg = false;
      k++;
    }

    var have = false, gap = false, bin = 0;
    var fI = 0, mnI = 0, mxI = 0, lI = 0, mnY = 0, mxY = 0;
    function flush() {
      var b = mnI < mxI ? mnI : mxI, c = mnI < mxI ? mxI : mnI;
      push(fI);
      if (b > fI) push(b);
      if (c > b && c > fI) push(c);
      if (lI > c && lI > fI) push(lI);
    }

    for (var i = i0; i <= i1; i++) {
      var y = ys[i];
      if (y !== y) { gap = true; continue; }
      if (log && !(y > 0)) continue; // non-positive values are skipped on a log axis
      var bb = Math.floor((xs[i] - x0) * binScale);
      if (have && bb === bin) {
        if (y < mnY) { mnY = y; mnI = i; } else if (y > mxY) { mxY = y; mxI = i; }
        lI = i;
        gap = false; // a gap narrower than a bin is not drawn
      } else {
        if (have) flush();
        if (gap) newSeg = true;
        gap = false;
        have = true; bin = bb;
        fI = mnI = mxI = lI = i; mnY = mxY = y;
      }
    }
    if (have) flush();

    // Replace far-away neighbour vertices by the line's intersection with the plot edges.
    if (k >= 2) {
      if (v[0] < 0 && v[5] === 0 && v[3] >= 0) {
        v[1] = v[1] + (v[4] - v[1]) * (0 - v[0]) / (v[3] - v[0]);
        v[0] = 0;
      }
      var L = (k - 1) * 3, P = (k - 2) * 3;
      if (v[L] > pw && v[L + 2] === 0 && v[P] <= pw) {
        v[L + 1] = v[P + 1] + (v[L + 1] - v[P + 1]) * (pw - v[P]) / (v[L] - v[P]);
        v[L] = pw;
      }
    }
    res.v = v; res.k = k;
    return res;
  }

  /* ---------------------------------------------------------------- the chart */

  function normalize(o) {
    o = o || {};
    var list = Array.isArray(o.series) ? o.series : [];
    var series = list.map(function (s, i) {
      s = s || {};
      var pts = s.points && typeof s.points.length === "number" ? s.points : [];
      return {
        name: s.name != null ? String(s.name) : "series " + (i + 1),
        color: s.color ? String(s.color) : PALETTE[i % PALETTE.length],
        points: pts,
      };
    });
    var sm = Number(o.smoothing);
    return {
      series: series,
      xKind: o.xKind === "time" || o.xKind === "relative" ? o.xKind : "step",
      yLog: !!o.yLog,
      smoothing: sm > 0 ? Math.min(sm, 0.999) : 0,
      height: Number(o.height) > 0 ? Number(o.height) : DEFAULT_HEIGHT,
      title: o.title != null ? String(o.title) : "",
    };
  }

  function create(container, options) {
    if (!container || !container.appendChild) throw new TypeError("KilnChart.create: a container element is required");
    var doc = container.ownerDocument || document;
    var win = doc.defaultView || window;

    var root = doc.createElement("div");
    root.className = "kiln-chart";
    root.style.cssText = "position:relative;width:100%;box-sizing:border-box;";

    var wrap = doc.createElement("div");
    wrap.className = "kiln-chart-plot";
    wrap.style.cssText = "position:relative;width:100%;";

    var canvas = doc.createElement("canvas");
    canvas.className = "kiln-chart-canvas";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.style.cssText = "display:block;width:100%;touch-action:pan-y;cursor:crosshair;";

    var overlay = doc.createElement("canvas");
    overlay.className = "kiln-chart-overlay";
    overlay.setAttribute("aria-hidden", "true");
    overlay.style.cssText = "position:absolute;left:0;top:0;width:100%;pointer-events:none;";

    var tip = doc.createElement("div");
    tip.className = "kiln-chart-tooltip";
    tip.setAttribute("role", "status");
    tip.style.cssText = "position:absolute;left:0;top:0;display:none;pointer-events:none;z-index:2;" +
      "box-sizing:border-box;overflow:hidden;white-space:nowrap;padding:4px 7px;border-radius:4px;" +
      "background:var(--chart-bg, #fff);color:var(--chart-fg, #1f2328);" +
      "border:1px solid var(--chart-grid, #e5e7eb);box-shadow:0 2px 8px rgba(0,0,0,.18);font:" + CSS_FONT + ";";

    var resetBtn = doc.createElement("button");
    resetBtn.type = "button";
    resetBtn.className = "kiln-chart-reset";
    resetBtn.textContent = "Reset zoom";
    resetBtn.title = "Reset zoom (double-click or 0)";
    resetBtn.style.cssText = "position:absolute;top:4px;right:4px;display:none;z-index:1;cursor:pointer;" +
      "padding:1px 6px;border-radius:3px;font:" + CSS_FONT + ";" +
      "background:var(--chart-bg, #fff);color:var(--chart-fg, #1f2328);border:1px solid var(--chart-grid, #e5e7eb);";

    var legend = doc.createElement("div");
    legend.className = "kiln-chart-legend";
    legend.style.cssText = "display:flex;flex-wrap:wrap;gap:2px 10px;padding:4px 2px 0;" +
      "font:" + CSS_FONT + ";color:var(--chart-fg, #1f2328);";

    wrap.appendChild(canvas);
    wrap.appendChild(overlay);
    wrap.appendChild(tip);
    wrap.appendChild(resetBtn);
    root.appendChild(wrap);
    root.appendChild(legend);
    container.appendChild(root);

    var ctx = canvas.getContext("2d");
    var octx = overlay.getContext("2d");
    var cache = new WeakMap();

    var st = {
      opts: null, data: [], hidden: new Set(), zoom: null, full: null, layout: null,
      theme: null, drawn: 0, hover: null, hoverRows: null, drag: null,
      guessLeft: 52, width: -1, dpr: 1, destroyed: false,
    };

    function getData(points) {
      var len = points.length;
      var d = cache.get(points);
      if (d && d.len === len && (len === 0 || (d.p0 === points[0] && d.pl === points[len - 1]))) return d;
      if (d && d.len > 0 && d.len < len && d.p0 === points[0] && d.pl === points[d.len - 1]) {
        d = extract(points, d, d.len); // the same array grew: convert only the new tail
      } else {
        d = extract(points, null, 0);
      }
      d.len = len; d.p0 = points[0]; d.pl = points[len - 1];
      cache.set(points, d);
      return d;
    }

    function smoothedOf(d, w) {
      if (d.smW !== w) { d.sm = ema(d.ys, d.n, w); d.smW = w; }
      return d.sm;
    }

    function readTheme() {
      var cs = win.getComputedStyle(root);
      var get = function (name, fb) { var v = cs.getPropertyValue(name).trim(); return v || fb; };
      var font = get("--chart-font", FALLBACK.font);
      if (!/\d(\.\d+)?(px|pt|em|rem|%)/.test(font)) font = "12px " + font; // a bare family
      ctx.font = FALLBACK.font;
      var fbSerialized = ctx.font;
      ctx.font = font;
      if (ctx.font === fbSerialized) font = FALLBACK.font;
      var m = /(\d+(?:\.\d+)?)px/.exec(ctx.font);
      return {
        bg: get("--chart-bg", FALLBACK.bg),
        fg: get("--chart-fg", FALLBACK.fg),
        grid: get("--chart-grid", FALLBACK.grid),
        font: font,
        size: m ? parseFloat(m[1]) : 12,
      };
    }

    function setColor(c, prop, value, fb) { c[prop] = fb; c[prop] = value; }

    function sizeCanvas(cv, w, h, dpr) {
      var bw = Math.max(1, Math.round(w * dpr)), bh = Math.max(1, Math.round(h * dpr));
      if (cv.width !== bw) cv.width = bw;
      if (cv.height !== bh) cv.height = bh;
      var hs = h + "px";
      if (cv.style.height !== hs) cv.style.height = hs;
    }

    function fitText(c, s, maxW) {
      if (c.measureText(s).width <= maxW) return s;
      var lo = 0, hi = s.length;
      while (lo < hi) {
        var m = (lo + hi + 1) >> 1;
        if (c.measureText(s.slice(0, m) + "\u2026").width <= maxW) lo = m; else hi = m - 1;
      }
      return s.slice(0, lo) + "\u2026";
    }

    /* ---- main render ---- */

    function render() {
      if (st.destroyed || !st.opts) return;
      var o = st.opts;
      var W = wrap.getBoundingClientRect().width;
      var H = Math.round(o.height);
      if (!(W > 0)) { st.width = 0; return; } // not laid out (hidden); the ResizeObserver retries
      var dpr = win.devicePixelRatio || 1;
      st.width = W; st.dpr = dpr;
      sizeCanvas(canvas, W, H, dpr);
      sizeCanvas(overlay, W, H, dpr);

      var th = readTheme();
      st.theme = th;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.globalAlpha = 1;
      ctx.clearRect(0, 0, W, H);
      setColor(ctx, "fillStyle", th.bg, FALLBACK.bg);
      ctx.fillRect(0, 0, W, H);
      ctx.font = th.font;
      var lineH = Math.ceil(th.size * 1.3);

      var T = o.title ? lineH + 14 : Math.ceil(lineH / 2) + 6;
      var B = lineH + 10, R = 16;
      var log = o.yLog, kind = o.xKind, w = o.smoothing;

      if (o.title) {
        var tf = th.font;
        ctx.font = "600 " + tf;
        if (ctx.font === th.font || !/600|bold/.test(ctx.font)) ctx.font = th.font;
        setColor(ctx, "fillStyle", th.fg, FALLBACK.fg);
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText(fitText(ctx, o.title, W - 16), W / 2, 7 + lineH / 2);
        ctx.font = th.font;
      }

      // Full x extent (all series, visible or not, so toggling does not move the axis).
      var f0 = Infinity, f1 = -Infinity, i, d;
      for (i = 0; i < st.data.length; i++) {
        d = st.data[i];
        if (d.n) { if (d.xs[0] < f0) f0 = d.xs[0]; if (d.xs[d.n - 1] > f1) f1 = d.xs[d.n - 1]; }
      }
      var vis = [];
      for (i = 0; i < o.series.length; i++) {
        d = st.data[i];
        if (!st.hidden.has(o.series[i].name) && (log ? d.positive : d.finite)) vis.push(i);
      }
      var anyData = false;
      for (i = 0; i < st.data.length; i++) if (log ? st.data[i].positive : st.data[i].finite) anyData = true;

      if (!anyData || !vis.length) {
        st.full = f1 >= f0 ? [f0, f1] : null;
        drawEmpty(W, H, T, B, R, th, anyData ? "All series hidden" : "No data");
        return finish(W, H, null);
      }

      st.full = [f0, f1];
      if (st.zoom && (st.zoom[1] < f0 || st.zoom[0] > f1)) st.zoom = null; // data moved away
      var x0 = f0, x1 = f1;
      if (st.zoom) { x0 = st.zoom[0]; x1 = st.zoom[1]; }
      if (!(x1 > x0)) {
        var pad = kind === "time" ? MIN : 1;
        x0 -= pad; x1 += pad;
      }

      // Decimate with a provisional plot width, derive the y range and its labels, then
      // redo the decimation if the y labels need a different left margin.
      var L = st.guessLeft;
      var PW = W - L - R, PH = H - T - B;
      if (PW < 10 || PH < 10) {
        drawEmpty(W, H, T, B, R, th, "");
        return finish(W, H, null);
      }
      var lines = decimateAll(vis, x0, x1, PW, log, w);
      var ext = yExtent(lines, PW);
      var yLo = ext[0], yHi = ext[1], inRange = yHi >= yLo;
      if (!inRange) { yLo = 0; yHi = 1; }
      if (yHi === yLo) {
        var p = log ? 0.5 : (Math.abs(yLo) * 0.1 || 1);
        yLo -= p; yHi += p;
      } else {
        var pp = (yHi - yLo) * 0.05;
        yLo -= pp; yHi += pp;
      }

      var yTarget = Math.max(2, Math.round(PH / 36));
      var yt = yAxisTicks(yLo, yHi, yTarget, log);
      var maxLabelW = 0;
      for (i = 0; i < yt.labels.length; i++) maxLabelW = Math.max(maxLabelW, ctx.measureText(yt.labels[i]).width);
      var newL = Math.max(32, Math.ceil(maxLabelW) + 14);
      if (newL !== L) {
        var oldPW = PW;
        L = newL; st.guessLeft = newL;
        PW = W - L - R;
        if (PW < 10) { drawEmpty(W, H, T, B, R, th, ""); return finish(W, H, null); }
        var ratio = PW / oldPW;
        // A small change only stretches the bins a little: rescale instead of decimating again.
        if (ratio >= 0.97 && ratio <= 1.15) rescaleAll(lines, ratio);
        else lines = decimateAll(vis, x0, x1, PW, log, w);
      }

      var ySpan = yHi - yLo;
      var mapY = function (ty) { return T + (yHi - ty) / ySpan * PH; };
      var xt = xTicks(kind, x0, x1, PW, ctx);

      // Grid.
      ctx.lineWidth = 1;
      setColor(ctx, "strokeStyle", th.grid, FALLBACK.grid);
      ctx.beginPath();
      for (i = 0; i < yt.pos.length; i++) {
        var gy = Math.round(mapY(yt.pos[i])) + 0.5;
        if (gy < T - 0.5 || gy > T + PH + 0.5) continue;
        ctx.moveTo(L, gy); ctx.lineTo(L + PW, gy);
      }
      for (i = 0; i < xt.vals.length; i++) {
        var gx = Math.round(L + (xt.vals[i] - x0) / (x1 - x0) * PW) + 0.5;
        ctx.moveTo(gx, T); ctx.lineTo(gx, T + PH);
      }
      ctx.stroke();

      // Axis lines.
      setColor(ctx, "strokeStyle", th.fg, FALLBACK.fg);
      ctx.globalAlpha = 0.35;
      ctx.beginPath();
      ctx.moveTo(L + 0.5, T); ctx.lineTo(L + 0.5, T + PH + 0.5);
      ctx.lineTo(L + PW, T + PH + 0.5);
      ctx.stroke();

      // Tick labels.
      ctx.globalAlpha = 0.8;
      setColor(ctx, "fillStyle", th.fg, FALLBACK.fg);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (i = 0; i < yt.pos.length; i++) {
        var ly = mapY(yt.pos[i]);
        if (ly < T - 1 || ly > T + PH + 1) continue;
        ctx.fillText(yt.labels[i], L - 6, clamp(ly, lineH / 2, H - lineH / 2));
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (i = 0; i < xt.vals.length; i++) {
        var lx = L + (xt.vals[i] - x0) / (x1 - x0) * PW;
        var half = ctx.measureText(xt.labels[i]).width / 2;
        ctx.fillText(xt.labels[i], clamp(lx, half + 1, W - half - 1), T + PH + 5);
      }
      ctx.globalAlpha = 1;

      // Series.
      ctx.save();
      ctx.beginPath();
      ctx.rect(L, T, PW, PH);
      ctx.clip();
      ctx.lineJoin = "round";
      ctx.lineCap = "round";
      var drawn = 0, j;
      if (w > 0) {
        ctx.globalAlpha = 0.25;
        for (j = 0; j < lines.length; j++) drawn += strokeLine(lines[j].raw, lines[j].color, 1, L, mapY);
        ctx.globalAlpha = 1;
        for (j = 0; j < lines.length; j++) drawn += strokeLine(lines[j].sm, lines[j].color, 1.5, L, mapY);
      } else {
        for (j = 0; j < lines.length; j++) drawn += strokeLine(lines[j].raw, lines[j].color, 1.5, L, mapY);
      }
      ctx.restore();

      if (!inRange) drawMessage(L + PW / 2, T + PH / 2, "No data in range", th);

      st.drawn = drawn;
      return finish(W, H, { W: W, H: H, L: L, T: T, PW: PW, PH: PH, x0: x0, x1: x1, yLo: yLo, yHi: yHi, log: log, kind: kind });
    }

    function decimateAll(vis, x0, x1, pw, log, w) {
      var out = [];
      for (var j = 0; j < vis.length; j++) {
        var idx = vis[j], d = st.data[idx];
        var line = { idx: idx, color: st.opts.series[idx].color, raw: decimate(d.xs, d.ys, d.n, x0, x1, pw, log), sm: null };
        if (w > 0) line.sm = decimate(d.xs, smoothedOf(d, w), d.n, x0, x1, pw, log);
        out.push(line);
      }
      return out;
    }

    function rescaleAll(lines, ratio) {
      var sc = function (r) {
        if (!r || !r.k) return;
        for (var q = 0, e = r.k * 3; q < e; q += 3) r.v[q] *= ratio;
      };
      for (var j = 0; j < lines.length; j++) { sc(lines[j].raw); sc(lines[j].sm); }
    }

    function yExtent(lines, pw) {
      var lo = Infinity, hi = -Infinity, eps = 1e-6 * pw;
      var scan = function (r) {
        if (!r || !r.k) return;
        var v = r.v;
        for (var q = 0, e = r.k * 3; q < e; q += 3) {
          var px = v[q];
          if (px < -eps || px > pw + eps) continue;
          var y = v[q + 1];
          if (y < lo) lo = y;
          if (y > hi) hi = y;
        }
      };
      for (var j = 0; j < lines.length; j++) { scan(lines[j].raw); scan(lines[j].sm); }
      return [lo, hi];
    }

    function yAxisTicks(lo, hi, target, log) {
      var vals, labels, pos, i, maxAbs = 0;
      if (log) {
        var lt = logTicks(lo, hi, target);
        vals = lt.vals;
        if (lt.perTick) {
          labels = vals.map(function (v) { return formatCompact(v, v, useExpFor(v)); });
        } else {
          for (i = 0; i < vals.length; i++) maxAbs = Math.max(maxAbs, Math.abs(vals[i]));
          labels = vals.map(function (v) { return formatCompact(v, lt.step, useExpFor(maxAbs)); });
        }
        pos = vals.map(function (v) { return Math.log10(v); });
      } else {
        var t = linearTicks(lo, hi, target);
        vals = t.vals;
        for (i = 0; i < vals.length; i++) maxAbs = Math.max(maxAbs, Math.abs(vals[i]));
        var ue = useExpFor(maxAbs);
        labels = vals.map(function (v) { return formatCompact(v, t.step, ue); });
        pos = vals;
      }
      return { vals: vals, labels: labels, pos: pos };
    }

    function strokeLine(r, color, width, L, mapY) {
      if (!r || !r.k) return 0;
      var v = r.v, k = r.k;
      setColor(ctx, "strokeStyle", color, FALLBACK.fg);
      setColor(ctx, "fillStyle", color, FALLBACK.fg);
      ctx.lineWidth = width;
      ctx.beginPath();
      var dots = [], segLen = 0, lx = 0, ly = 0;
      for (var q = 0, e = k * 3; q < e; q += 3) {
        var px = L + v[q], py = mapY(v[q + 1]);
        if (v[q + 2]) {
          if (segLen === 1) dots.push(lx, ly);
          ctx.moveTo(px, py);
          segLen = 1;
        } else {
          ctx.lineTo(px, py);
          segLen++;
        }
        lx = px; ly = py;
      }
      if (segLen === 1) dots.push(lx, ly);
      ctx.stroke();
      if (dots.length) {
        var rad = Math.max(1.5, width);
        ctx.beginPath();
        for (var j = 0; j < dots.length; j += 2) {
          ctx.moveTo(dots[j] + rad, dots[j + 1]);
          ctx.arc(dots[j], dots[j + 1], rad, 0, Math.PI * 2);
        }
        ctx.fill();
      }
      return k;
    }

    function drawMessage(x, y, text, th) {
      ctx.globalAlpha = 0.6;
      setColor(ctx, "fillStyle", th.fg, FALLBACK.fg);
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(text, x, y);
      ctx.globalAlpha = 1;
    }

    function drawEmpty(W, H, T, B, R, th, msg) {
      var L = 32, PW = W - L - R, PH = H - T - B;
      if (PW > 0 && PH > 0) {
        setColor(ctx, "strokeStyle", th.fg, FALLBACK.fg);
        ctx.globalAlpha = 0.35;
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(L + 0.5, T); ctx.lineTo(L + 0.5, T + PH + 0.5); ctx.lineTo(L + PW, T + PH + 0.5);
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      if (msg) drawMessage(W / 2, T + Math.max(PH, 0) / 2, msg, th);
      st.drawn = 0;
    }

    function finish(W, H, layout) {
      st.layout = layout;
      resetBtn.style.display = st.zoom ? "" : "none";
      if (!layout) { st.hoverRows = null; tip.style.display = "none"; }
      drawOverlay();
      container.dataset.rendered = "1";
    }

    /* ---- overlay: hover guide, markers, drag selection ---- */

    function drawOverlay() {
      if (st.destroyed) return;
      var dpr = st.dpr, lay = st.layout, th = st.theme || FALLBACK;
      octx.setTransform(1, 0, 0, 1, 0, 0);
      octx.clearRect(0, 0, overlay.width, overlay.height);
      if (!lay) return;
      octx.setTransform(dpr, 0, 0, dpr, 0, 0);
      if (st.drag) {
        var a = Math.min(st.drag.start, st.drag.cur), b = Math.max(st.drag.start, st.drag.cur);
        setColor(octx, "fillStyle", th.fg, FALLBACK.fg);
        octx.globalAlpha = 0.1;
        octx.fillRect(a, lay.T, b - a, lay.PH);
        octx.globalAlpha = 0.5;
        setColor(octx, "strokeStyle", th.fg, FALLBACK.fg);
        octx.lineWidth = 1;
        octx.strokeRect(Math.round(a) + 0.5, lay.T + 0.5, Math.max(0, Math.round(b - a) - 1), lay.PH - 1);
        octx.globalAlpha = 1;
        return;
      }
      if (!st.hover || !st.hoverRows) return;
      var mx = Math.round(st.hover.x) + 0.5;
      octx.globalAlpha = 0.45;
      setColor(octx, "strokeStyle", th.fg, FALLBACK.fg);
      octx.lineWidth = 1;
      octx.beginPath();
      octx.moveTo(mx, lay.T); octx.lineTo(mx, lay.T + lay.PH);
      octx.stroke();
      octx.globalAlpha = 1;
      var ySpan = lay.yHi - lay.yLo;
      for (var i = 0; i < st.hoverRows.length; i++) {
        var r = st.hoverRows[i];
        var ty = lay.log ? Math.log10(r.y) : r.y;
        var px = lay.L + (r.x - lay.x0) / (lay.x1 - lay.x0) * lay.PW;
        var py = lay.T + (lay.yHi - ty) / ySpan * lay.PH;
        if (py < lay.T - 1 || py > lay.T + lay.PH + 1) continue;
        octx.beginPath();
        octx.arc(px, py, 3.5, 0, Math.PI * 2);
        setColor(octx, "fillStyle", r.color, FALLBACK.fg);
        octx.fill();
        octx.lineWidth = 1.5;
        setColor(octx, "strokeStyle", th.bg, FALLBACK.bg);
        octx.stroke();
      }
    }

    function nearestValid(xs, vals, n, x, log) {
      var i = lowerBound(xs, n, x);
      var a = i - 1, b = i, lim = 0, va, vb;
      while (a >= 0 && lim++ < 100000) { va = vals[a]; if (va === va && (!log || va > 0)) break; a--; }
      lim = 0;
      while (b < n && lim++ < 100000) { vb = vals[b]; if (vb === vb && (!log || vb > 0)) break; b++; }
      var okA = a >= 0 && vals[a] === vals[a] && (!log || vals[a] > 0);
      var okB = b < n && vals[b] === vals[b] && (!log || vals[b] > 0);
      if (okA && okB) return x - xs[a] <= xs[b] - x ? a : b;
      return okA ? a : okB ? b : -1;
    }

    function hideTip() {
      st.hoverRows = null;
      tip.style.display = "none";
    }

    function updateHover() {
      var lay = st.layout;
      if (!lay || !st.hover || st.drag) { hideTip(); drawOverlay(); return; }
      var mx = st.hover.x, my = st.hover.y;
      if (mx < lay.L || mx > lay.L + lay.PW || my < lay.T || my > lay.T + lay.PH) {
        hideTip(); drawOverlay(); return;
      }
      var o = st.opts;
      var x = lay.x0 + (mx - lay.L) / lay.PW * (lay.x1 - lay.x0);
      var rows = [];
      for (var i = 0; i < o.series.length; i++) {
        var s = o.series[i], d = st.data[i];
        if (st.hidden.has(s.name) || !d.n) continue;
        var vals = o.smoothing > 0 ? smoothedOf(d, o.smoothing) : d.ys;
        var j = nearestValid(d.xs, vals, d.n, x, lay.log);
        if (j < 0 || d.xs[j] < lay.x0 || d.xs[j] > lay.x1) continue;
        rows.push({ name: s.name, color: s.color, x: d.xs[j], y: vals[j], raw: d.ys[j], index: j });
      }
      if (!rows.length) { hideTip(); drawOverlay(); return; }
      st.hoverRows = rows;
      fillTip(rows, o);
      positionTip(mx, my, lay);
      drawOverlay();
    }

    function fillTip(rows, o) {
      tip.textContent = "";
      var grid = doc.createElement("div");
      grid.style.cssText = "display:grid;grid-template-columns:auto auto auto auto;gap:1px 8px;align-items:center;";
      var muted = "opacity:.7;";
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i];
        var sw = doc.createElement("span");
        sw.style.cssText = "display:inline-block;width:10px;height:10px;border-radius:2px;";
        sw.style.background = r.color;
        var nm = doc.createElement("span");
        nm.textContent = r.name;
        nm.style.cssText = "overflow:hidden;text-overflow:ellipsis;max-width:320px;";
        var xv = doc.createElement("span");
        xv.textContent = formatX(o.xKind, r.x);
        xv.style.cssText = muted + "text-align:right;";
        var yv = doc.createElement("span");
        yv.style.cssText = "text-align:right;font-variant-numeric:tabular-nums;";
        yv.textContent = formatValue(r.y);
        if (o.smoothing > 0) {
          var raw = doc.createElement("span");
          raw.style.cssText = muted;
          raw.textContent = " (" + formatValue(r.raw) + ")";
          yv.appendChild(raw);
        }
        grid.appendChild(sw); grid.appendChild(nm); grid.appendChild(xv); grid.appendChild(yv);
      }
      tip.appendChild(grid);
    }

    function positionTip(mx, my, lay) {
      tip.style.maxWidth = lay.W + "px";
      tip.style.maxHeight = lay.H + "px";
      tip.style.left = "0px";
      tip.style.top = "0px";
      tip.style.display = "block";
      var tw = tip.offsetWidth, thh = tip.offsetHeight;
      var left = mx + 14;
      if (left + tw > lay.W) left = mx - 14 - tw;
      left = clamp(left, 0, Math.max(0, lay.W - tw));
      var top = my + 14;
      if (top + thh > lay.H) top = my - 14 - thh;
      top = clamp(top, 0, Math.max(0, lay.H - thh));
      tip.style.left = Math.round(left) + "px";
      tip.style.top = Math.round(top) + "px";
    }

    /* ---- zoom ---- */

    function currentView() {
      var lay = st.layout;
      if (lay) return [lay.x0, lay.x1];
      return st.zoom || st.full;
    }

    function setZoom(range) {
      var full = st.full;
      if (!range || !full || !(full[1] > full[0])) {
        st.zoom = null;
      } else {
        var a = Math.min(range[0], range[1]), b = Math.max(range[0], range[1]);
        var fw = full[1] - full[0];
        var minW = Math.max(fw * 1e-9, Math.abs((a + b) / 2) * 1e-12, 1e-300);
        if (b - a < minW) { var c = (a + b) / 2; a = c - minW / 2; b = c + minW / 2; }
        var wdt = b - a;
        if (wdt >= fw) st.zoom = null;
        else {
          if (a < full[0]) { a = full[0]; b = a + wdt; }
          if (b > full[1]) { b = full[1]; a = b - wdt; }
          st.zoom = [a, b];
        }
      }
      render();
      updateHover();
    }

    function zoomBy(factor) {
      var v = currentView();
      if (!v) return;
      var c = (v[0] + v[1]) / 2, h = (v[1] - v[0]) * factor / 2;
      setZoom([c - h, c + h]);
    }

    function panBy(frac) {
      if (!st.zoom) return;
      var v = st.zoom, dx = (v[1] - v[0]) * frac;
      setZoom([v[0] + dx, v[1] + dx]);
    }

    /* ---- events ---- */

    function localPos(e) {
      var r = canvas.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    }

    function onPointerDown(e) {
      if (e.button !== 0 || !st.layout) return;
      var p = localPos(e), lay = st.layout;
      try { canvas.focus({ preventScroll: true }); } catch (err) { /* ignore */ }
      if (p.x < lay.L || p.x > lay.L + lay.PW || p.y < lay.T || p.y > lay.T + lay.PH) return;
      e.preventDefault();
      st.drag = { start: p.x, cur: p.x, id: e.pointerId };
      try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events have no capturable pointer */ }
      hideTip();
      drawOverlay();
    }

    function onPointerMove(e) {
      var p = localPos(e);
      if (st.drag) {
        var lay = st.layout;
        if (lay) st.drag.cur = clamp(p.x, lay.L, lay.L + lay.PW);
        drawOverlay();
        return;
      }
      st.hover = p;
      updateHover();
    }

    function endDrag(e, apply) {
      if (!st.drag) return;
      var drag = st.drag, lay = st.layout;
      st.drag = null;
      try { if (canvas.hasPointerCapture && canvas.hasPointerCapture(drag.id)) canvas.releasePointerCapture(drag.id); } catch (err) { /* ignore */ }
      if (e && e.clientX !== undefined) {
        var p = localPos(e);
        if (lay) drag.cur = clamp(p.x, lay.L, lay.L + lay.PW);
        st.hover = p;
      }
      if (apply && lay && Math.abs(drag.cur - drag.start) >= 4) {
        var toX = function (px) { return lay.x0 + (px - lay.L) / lay.PW * (lay.x1 - lay.x0); };
        setZoom([toX(drag.start), toX(drag.cur)]);
      } else {
        updateHover();
      }
    }

    function onPointerUp(e) { endDrag(e, true); }
    function onPointerCancel() { endDrag(null, false); }
    function onPointerLeave() {
      if (st.drag) return;
      st.hover = null;
      hideTip();
      drawOverlay();
    }
    function onDblClick(e) { e.preventDefault(); setZoom(null); }

    function onKeyDown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      switch (e.key) {
        case "+": case "=": zoomBy(0.5); break;
        case "-": case "_": zoomBy(2); break;
        case "ArrowLeft": panBy(-0.2); break;
        case "ArrowRight": panBy(0.2); break;
        case "0": setZoom(null); break;
        case "Escape":
          if (!st.drag) return;
          endDrag(null, false); break;
        default: return;
      }
      e.preventDefault();
    }

    function onTheme() { if (!st.destroyed) { render(); updateHover(); } }

    // The canvas's listeners, added here and removed by destroy().
    var canvasListeners = [
      ["pointerdown", onPointerDown], ["pointermove", onPointerMove], ["pointerup", onPointerUp],
      ["pointercancel", onPointerCancel], ["pointerleave", onPointerLeave], ["dblclick", onDblClick],
      ["keydown", onKeyDown],
    ];
    canvasListeners.forEach(function (l) { canvas.addEventListener(l[0], l[1]); });
    resetBtn.addEventListener("click", function () { setZoom(null); });
    doc.addEventListener("kiln-theme-change", onTheme);
    var mq = win.matchMedia ? win.matchMedia("(prefers-color-scheme: dark)") : null;
    if (mq && mq.addEventListener) mq.addEventListener("change", onTheme);

    var ro = null;
    if (typeof win.ResizeObserver === "function") {
      ro = new win.ResizeObserver(function () {
        if (st.destroyed) return;
        var w = wrap.getBoundingClientRect().width;
        if (Math.abs(w - st.width) >= 0.5 || (win.devicePixelRatio || 1) !== st.dpr) { render(); updateHover(); }
      });
      ro.observe(wrap);
    } else {
      win.addEventListener("resize", onTheme);
    }

    /* ---- legend ---- */

    function buildLegend() {
      legend.textContent = "";
      var series = st.opts.series;
      legend.style.display = series.length ? "flex" : "none";
      series.forEach(function (s) {
        var hidden = st.hidden.has(s.name);
        var b = doc.createElement("button");
        b.type = "button";
        b.className = "kiln-chart-legend-item";
        b.setAttribute("aria-pressed", hidden ? "false" : "true");
        b.title = (hidden ? "Show " : "Hide ") + s.name;
        b.style.cssText = "display:inline-flex;align-items:center;gap:6px;border:0;background:none;margin:0;" +
          "padding:2px 4px;border-radius:3px;cursor:pointer;font:inherit;color:inherit;text-align:left;" +
          (hidden ? "opacity:.45;" : "");
        var sw = doc.createElement("span");
        sw.className = "kiln-chart-swatch";
        sw.style.cssText = "display:inline-block;flex:none;width:14px;height:4px;border-radius:2px;";
        sw.style.background = s.color;
        var label = doc.createElement("span");
        label.textContent = s.name;
        if (hidden) label.style.textDecoration = "line-through";
        b.appendChild(sw);
        b.appendChild(label);
        b.addEventListener("click", function () {
          if (st.hidden.has(s.name)) st.hidden.delete(s.name); else st.hidden.add(s.name);
          buildLegend();
          render();
          updateHover();
        });
        legend.appendChild(b);
      });
    }

    /* ---- public API ---- */

    function update(opts) {
      if (st.destroyed) return;
      var o = normalize(opts);
      // A zoom is kept across updates, but not into another x unit.
      if ((opts && opts.resetZoom) || (st.opts && st.opts.xKind !== o.xKind)) st.zoom = null;
      st.opts = o;
      st.data = o.series.map(function (s) { return getData(s.points); });
      var names = o.series.map(function (s) { return s.name; }).join(", ");
      canvas.setAttribute("aria-label", (o.title || "Chart") + (names ? ": " + names : ""));
      buildLegend();
      render();
      if (st.hover) updateHover();
    }

    function destroy() {
      if (st.destroyed) return;
      st.destroyed = true;
      if (ro) ro.disconnect(); else win.removeEventListener("resize", onTheme);
      doc.removeEventListener("kiln-theme-change", onTheme);
      if (mq && mq.removeEventListener) mq.removeEventListener("change", onTheme);
      canvasListeners.forEach(function (l) { canvas.removeEventListener(l[0], l[1]); });
      if (root.parentNode) root.parentNode.removeChild(root);
      delete container.dataset.rendered;
      st.data = []; st.layout = null; st.hoverRows = null;
    }

    var chart = {
      canvas: canvas,
      update: update,
      destroy: destroy,
      drawnPoints: function () { return st.drawn; },
      // Extras (not required by callers): current zoom range [x0, x1] or null, and reset.
      zoomRange: function () { return st.zoom ? st.zoom.slice() : null; },
      resetZoom: function () { setZoom(null); },
    };

    update(options);
    return chart;
  }

  window.KilnChart = { create: create };
})();
