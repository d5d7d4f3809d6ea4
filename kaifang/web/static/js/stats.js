/* Kaifang 开放 — the provider's 访问统计 page: one line per measure over the days, drawn with the
   vendored ECharts from the figures in #stats-chart's data-series attribute (JSON). */
(function () {
  "use strict";
  var box = document.getElementById("stats-chart");
  if (!box || !window.echarts) { return; }
  var data = JSON.parse(box.getAttribute("data-series"));
  var chart = window.echarts.init(box);
  chart.setOption({
    textStyle: { fontFamily: window.getComputedStyle(document.body).fontFamily },
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 16, right: 24, top: 40, bottom: 16, containLabel: true },
    xAxis: { type: "category", data: data.days, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", minInterval: 1 },
    series: data.series.map(function (s) { return { type: "line", name: s.name, data: s.values, showSymbol: false }; })
  });
  box.setAttribute("data-chart-state", "ready");
  window.addEventListener("resize", function () { chart.resize(); });
}());
