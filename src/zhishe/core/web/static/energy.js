// Energy charts: draws the series embedded in the page with the locally served Plotly bundle.
(function () {
  "use strict";
  var holder = document.getElementById("energy-data");
  if (!holder || !window.Plotly) return;
  var data = JSON.parse(holder.textContent);
  var config = { responsive: true, displaylogo: false };
  var layout = function (y) {
    return { margin: { t: 10, r: 10, l: 45, b: 40 }, yaxis: { title: y }, legend: { orientation: "h" }, height: 260 };
  };
  var draw = function (el, traces, y) { window.Plotly.react(el, traces, layout(y), config); el.setAttribute("data-drawn", "1"); };
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var kind = el.getAttribute("data-chart");
    if (kind === "load" && data.load) {
      var traces = [{ x: data.load.x, y: data.load.y, type: "scatter", mode: "lines", name: "kW", line: { shape: "hv" } }];
      var f = data.forecast;
      if (f && f.times) {
        traces.push({ x: f.times, y: f.mean, type: "scatter", mode: "lines", name: f.model, line: { dash: "dot" } });
        ["95", "80"].forEach(function (level) {
          var band = f.intervals && f.intervals[level];
          if (!band) return;
          traces.push({ x: f.times.concat(f.times.slice().reverse()), y: band.upper.concat(band.lower.slice().reverse()),
            fill: "toself", type: "scatter", mode: "none", name: level + "%", opacity: level === "95" ? 0.15 : 0.3 });
        });
      }
      draw(el, traces, "kW");
    } else if (kind.indexOf("daily-") === 0) {
      var series = data.daily[kind.slice(6)];
      if (series) draw(el, [{ x: series.x, y: series.y, type: "bar", name: kind.slice(6) }], "");
    } else if (kind === "community") {
      var names = ["households", "ev", "battery", "pv"];
      var out = names.filter(function (n) { return data[n]; }).map(function (n) {
        return { x: data[n].x, y: data[n].y, type: "scatter", mode: "lines", stackgroup: n === "pv" ? null : "load", name: n };
      });
      if (data.total) out.push({ x: data.total.x, y: data.total.y, type: "scatter", mode: "lines", name: "total", line: { width: 3 } });
      if (data.limit && data.total) {
        var xs = data.total.x;
        out.push({ x: [xs[0], xs[xs.length - 1]], y: [data.limit, data.limit], type: "scatter", mode: "lines", name: "limit", line: { color: "#c0392b", dash: "dash" } });
      }
      draw(el, out, "kW");
    } else if (kind === "charging" && data.plan) {
      var p = data.plan;
      draw(el, [
        { x: p.x, y: p.base, type: "scatter", mode: "lines", stackgroup: "load", name: "base" },
        { x: p.x, y: p.ev, type: "scatter", mode: "lines", stackgroup: "load", name: "EV" },
        { x: p.x, y: p.grid, type: "scatter", mode: "lines", name: "grid", line: { width: 3 } },
        { x: [p.x[0], p.x[p.x.length - 1]], y: [p.limit, p.limit], type: "scatter", mode: "lines", name: "limit", line: { color: "#c0392b", dash: "dash" } }
      ], "kW");
    } else if (kind === "flows") {
      var flows = JSON.parse(el.getAttribute("data-flows"));
      var labels = Object.keys(flows);
      draw(el, [{ x: labels, y: labels.map(function (k) { return flows[k]; }), type: "bar" }], "kWh");
    }
  });
})();
