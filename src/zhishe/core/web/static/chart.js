// Dataset chart: asks the aggregate API and draws it with the locally served Plotly bundle.
(function () {
  "use strict";
  var box = document.getElementById("chart");
  if (!box || !window.Plotly) return;
  var status = document.getElementById("chart-status");
  var pick = function (id) { var el = document.getElementById(id); return el ? el.value : null; };
  var draw = function () {
    var measure = pick("chart-measure"), func = pick("chart-func") || "avg";
    var params = new URLSearchParams();
    params.append("measure", func + ":" + measure);
    var x;
    if (box.dataset.kind === "time") {
      x = "bucket";
      params.append("bucket", box.dataset.x + ":" + (pick("chart-bucket") || "day"));
    } else {
      x = pick("chart-x") || box.dataset.x;
      params.append("group_by", x);
    }
    params.append("limit", "5000");
    status.textContent = "…";
    fetch("/api/v1/datasets/" + encodeURIComponent(box.dataset.dataset) + "/aggregate?" + params.toString(),
      { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { status.textContent = res.body.error ? res.body.error.message : "error"; return; }
        var cols = res.body.columns, rows = res.body.rows;
        var xKey = box.dataset.kind === "time" ? cols[0] : x;
        var yKey = cols[cols.length - 1];
        var trace = { x: rows.map(function (r) { return r[xKey]; }), y: rows.map(function (r) { return r[yKey]; }),
          type: box.dataset.kind === "time" ? "scatter" : "bar", mode: "lines", name: yKey };
        window.Plotly.react(box, [trace], { margin: { t: 20, r: 10, l: 50, b: 60 }, yaxis: { title: yKey },
          xaxis: { title: box.dataset.kind === "time" ? box.dataset.x : x } }, { responsive: true, displaylogo: false });
        status.textContent = rows.length + " points";
        box.setAttribute("data-drawn", "1");
      })
      .catch(function (e) { status.textContent = String(e); });
  };
  ["chart-measure", "chart-func", "chart-bucket", "chart-x"].forEach(function (id) {
    var el = document.getElementById(id); if (el) el.addEventListener("change", draw);
  });
  draw();
})();
