// Exchange dashboard: small bar charts from the figures embedded in the page (Plotly, served locally).
(function () {
  "use strict";
  if (!window.Plotly) return;
  var layout = { margin: { t: 10, r: 10, b: 80, l: 40 }, height: 260 };
  document.querySelectorAll("[data-bars]").forEach(function (box) {
    var data = JSON.parse(box.dataset.bars || "{}");
    Plotly.newPlot(box, [{ type: "bar", x: data.x || [], y: data.y || [], marker: { color: "#1565c0" } }], layout,
      { displayModeBar: false, responsive: true });
    box.dataset.drawn = "1";
  });
})();
