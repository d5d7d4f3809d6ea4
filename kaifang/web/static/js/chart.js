/* Kaifang 开放 — the entry page's chart panels (图表), drawn with the vendored ECharts.
   Each [data-chart] section holds a form (chart type, x column, aggregate, numeric column) and a
   .chart-canvas; every change fetches the figures from the section's data-chart URL (JSON, no API
   key needed) and redraws. Without this script the form stays hidden and a <noscript> note shows.
   Panel state for styles and tests: data-chart-state = loading | drawing | ready | empty | error. */
(function () {
  "use strict";

  if (!window.echarts) { return; }
  var echarts = window.echarts;
  var root = document.documentElement;
  var PRIMARY = "#0b4ea2";
  var numberFormat = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 2 });

  function formatNumber(value) {
    return value === null || value === undefined || value === "-" ? "—" : numberFormat.format(value);
  }

  function message(status, key, values) {
    var text = status.getAttribute("data-msg-" + key) || "";
    Object.keys(values || {}).forEach(function (name) {
      text = text.replace("{" + name + "}", formatNumber(values[name]));
    });
    return text;
  }

  /* Canvas text does not inherit CSS: pass the page's Chinese font stack, larger in 长辈模式. */
  function textStyle() {
    var elder = root.classList.contains("elder");
    return { fontFamily: window.getComputedStyle(document.body).fontFamily, fontSize: elder ? 16 : 13 };
  }

  function axisOption(data, text) {
    var many = data.categories.length > 60;
    var series = {
      type: data.type,
      name: data.series,
      data: data.values,
      itemStyle: { color: PRIMARY },
      lineStyle: { color: PRIMARY, width: 2 },
      showSymbol: !many,
      sampling: data.type === "line" ? "lttb" : undefined,
      barMaxWidth: 48
    };
    return {
      grid: { left: 16, right: 24, top: 40, bottom: many ? 56 : 16 },
      tooltip: { trigger: "axis", valueFormatter: formatNumber },
      xAxis: {
        type: "category",
        name: data.x,
        data: data.categories,
        // A few long names turn to fit; many points keep level labels and thin them out instead.
        axisLabel: { hideOverlap: true, rotate: data.categories.length > 8 && !many ? 30 : 0, fontSize: text.fontSize }
      },
      yAxis: {
        type: "value",
        name: data.series,
        minInterval: data.agg === "count" ? 1 : 0,  // no 0.5 records
        axisLabel: { formatter: formatNumber, fontSize: text.fontSize }
      },
      dataZoom: many ? [{ type: "inside" }, { type: "slider", height: 20, bottom: 8 }] : [],
      series: [series]
    };
  }

  function pieOption(data, text, otherLabel) {
    var slices = data.categories.map(function (name, i) { return { name: name, value: data.values[i] }; });
    if (data.other) { slices.push({ name: otherLabel, value: data.other, itemStyle: { color: "#9aa5b1" } }); }
    // Counts and sums are parts of a whole; averages, maxima and minima are not: show them as values.
    var additive = data.agg === "count" || data.agg === "sum";
    return {
      tooltip: { trigger: "item", valueFormatter: formatNumber },
      series: [{
        type: "pie",
        name: data.series,
        radius: ["28%", "58%"],
        data: slices,
        labelLayout: { hideOverlap: true },
        label: {
          formatter: additive ? "{b}\n{d}%" : function (p) { return p.name + "\n" + formatNumber(p.value); },
          fontSize: text.fontSize
        }
      }]
    };
  }

  function buildOption(data, otherLabel) {
    var text = textStyle();
    var option = data.type === "pie" ? pieOption(data, text, otherLabel) : axisOption(data, text);
    option.textStyle = text;
    option.animationDuration = 300;
    return option;
  }

  /* What a screen reader hears instead of the canvas: the title and the first groups. */
  function describe(data) {
    var parts = data.categories.slice(0, 10).map(function (name, i) {
      return name + " " + formatNumber(data.values[i]);
    });
    return data.title + (parts.length ? "：" + parts.join("；") : "");
  }

  function setupPanel(panel) {
    var form = panel.querySelector(".chart-form");
    var canvas = panel.querySelector(".chart-canvas");
    var status = panel.querySelector(".chart-status");
    var title = panel.querySelector(".chart-title");
    if (!form || !canvas || !status || !title) { return; }
    form.hidden = false;
    canvas.hidden = false;
    var chart = echarts.init(canvas, null, { renderer: "canvas", locale: "ZH" });
    var ySelect = form.elements.namedItem("y");
    var latest = 0;
    var lastData = null;

    function setState(state, text) {
      panel.setAttribute("data-chart-state", state);
      status.textContent = text;
    }

    function syncY() {
      if (!ySelect) { return; }
      var needsY = form.elements.namedItem("agg").value !== "count";
      ySelect.disabled = !needsY;
      ySelect.closest(".chart-field").hidden = !needsY;
    }

    function fail(text) {
      lastData = null;
      chart.clear();
      title.textContent = "";
      setState("error", text);
    }

    function draw(data) {
      lastData = data;
      title.textContent = data.title;  // in the page, not the canvas: pie labels cannot cover it
      if (!data.categories.length) {
        chart.clear();
        canvas.setAttribute("aria-label", data.title);
        setState("empty", message(status, "empty"));
        return;
      }
      setState("drawing", "");  // shown again (empty and error hide it) before it is measured
      chart.resize();
      chart.setOption(buildOption(data, message(status, "other")), true);
      canvas.setAttribute("aria-label", describe(data));
      var shown = data.categories.length;
      var note = "";
      if (data.groups > shown) {
        note = message(status, data.type === "line" ? "first" : "top", { groups: data.groups, shown: shown });
      }
      setState("ready", note);
    }

    function load() {
      syncY();
      var params = new URLSearchParams();
      ["type", "x", "agg"].forEach(function (name) { params.set(name, form.elements.namedItem(name).value); });
      if (ySelect && !ySelect.disabled) { params.set("y", ySelect.value); }
      var request = ++latest;
      setState("loading", message(status, "loading"));
      window.fetch(panel.getAttribute("data-chart") + "?" + params.toString(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        if (request !== latest) { return; }  // a newer choice is already on its way
        if (!result.ok) {
          fail((result.body.error && result.body.error.message) || message(status, "network"));
          return;
        }
        draw(result.body);
      }).catch(function () {
        if (request === latest) { fail(message(status, "network")); }
      });
    }

    form.addEventListener("change", load);
    form.addEventListener("submit", function (evt) { evt.preventDefault(); load(); });
    window.addEventListener("resize", function () { chart.resize(); });
    // 长辈模式 changes the font size: redraw with the new one.
    new MutationObserver(function () { chart.resize(); if (lastData) { draw(lastData); } })
      .observe(root, { attributes: true, attributeFilter: ["class"] });
    load();
  }

  function start() {
    var panels = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < panels.length; i++) { setupPanel(panels[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
