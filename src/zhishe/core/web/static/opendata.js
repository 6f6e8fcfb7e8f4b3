// Open-data chart: asks the public query API and draws with the locally served Plotly bundle.
(function () {
  "use strict";
  var box = document.getElementById("opendata-chart");
  if (!box || !window.Plotly) return;
  var status = document.getElementById("chart-status");
  var x = box.dataset.x, y = box.dataset.y, bar = box.dataset.kind === "bar";
  var params = new URLSearchParams();
  if (bar) {
    params.append("$select", x + ", sum(" + y + ") as total");
    params.append("$group", x);
  } else {
    params.append("$select", x + ", " + y);
  }
  params.append("$order", x);
  params.append("$limit", "5000");
  params.append("version", box.dataset.version);
  status.textContent = "…";
  fetch("/opendata/api/v1/datasets/" + encodeURIComponent(box.dataset.dataset) + "/query.json?" + params.toString(),
    { headers: { Accept: "application/json" } })
    .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
    .then(function (res) {
      if (!res.ok) { status.textContent = res.body.error ? res.body.error.message : "error"; return; }
      var rows = res.body.rows, key = bar ? "total" : y;
      var trace = { x: rows.map(function (r) { return r[x]; }), y: rows.map(function (r) { return r[key]; }),
        type: bar ? "bar" : "scatter", mode: "lines", name: y };
      window.Plotly.react(box, [trace], { margin: { t: 20, r: 10, l: 50, b: 60 }, yaxis: { title: y }, xaxis: { title: x } },
        { responsive: true, displaylogo: false });
      status.textContent = rows.length + " points";
      box.setAttribute("data-drawn", "1");
    })
    .catch(function (e) { status.textContent = String(e); });
})();
