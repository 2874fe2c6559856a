// Charts: uPlot (static/vendor) drawing each <figure data-chart='{...}'> into its [data-chart-canvas], again whenever
// a live update swaps new data in, on a resize and when the system switches between light and dark.
//
// The data: {"x": [unix seconds...], "unit": "/s", "series": [{"label": "Messages", "values": [...], "color": "ok"}]},
// as JSON in the attribute (htmx drops <script> elements from what it swaps in, JSON blocks included). Colours name
// the stylesheet's variables (--accent, --ok, ...).
(function () {
  "use strict";

  var FALLBACK = ["accent", "ok", "warn", "bad", "idle"];

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim() || "#888";
  }

  // Where uPlot hides the points (many of them), a value with no value beside it would draw nothing at all (e.g. the
  // latency of the one interval with calls): those are drawn as points.
  function isolated(u, seriesIdx, show) {
    if (show) { return null; }
    var ys = u.data[seriesIdx], idxs = [];
    for (var i = 0; i < ys.length; i++) {
      if (ys[i] != null && (i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) { idxs.push(i); }
    }
    return idxs.length ? idxs : null;
  }

  function options(target, data) {
    var width = Math.max(240, target.clientWidth);
    var unit = data.unit || "";
    return {
      width: width,
      height: Number(target.getAttribute("data-height")) || 180,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: cssVar("muted"), grid: { stroke: cssVar("line"), width: 1 }, ticks: { stroke: cssVar("line") } },
        {
          stroke: cssVar("muted"), grid: { stroke: cssVar("line"), width: 1 }, ticks: { stroke: cssVar("line") },
          size: 56, values: function (u, splits) { return splits.map(function (v) { return v == null ? "" : v + unit; }); }
        }
      ],
      series: [{}].concat(data.series.map(function (s, i) {
        return {
          label: s.label, stroke: cssVar(s.color || FALLBACK[i % FALLBACK.length]), width: 2, spanGaps: true,
          points: { size: 5, filter: isolated },
          value: function (u, v) { return v == null ? "–" : (Math.round(v * 100) / 100) + unit; }
        };
      }))
    };
  }

  function draw(figure) {
    var target = figure.querySelector("[data-chart-canvas]");
    if (!target || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(figure.getAttribute("data-chart"));
    if (figure._chart) { figure._chart.destroy(); }
    target.textContent = "";
    var columns = [data.x].concat(data.series.map(function (s) { return s.values; }));
    figure._chart = new uPlot(options(target, data), columns, target);
    figure._drawn = figure.getAttribute("data-chart");
  }

  function drawAll(force) {
    var figures = document.querySelectorAll("figure[data-chart]");
    for (var i = 0; i < figures.length; i++) {
      if (force || figures[i]._drawn !== figures[i].getAttribute("data-chart")) { draw(figures[i]); }
    }
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(false); });
  document.addEventListener("htmx:afterSettle", function () { drawAll(false); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { drawAll(true); }, 150);
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { drawAll(true); });
})();
