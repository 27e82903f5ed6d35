// The costs page: draws the figures of /api/costs, /api/budget and /api/limits (written into the page
// as JSON) with d3, as SVG. Every name (model, job type, budget) is written as text, never markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("costs-data").textContent);
  const zone = data.zone;
  const colors = d3.scaleOrdinal(d3.schemeTableau10);
  const money = (value) => "$" + value.toFixed(value >= 100 ? 2 : 6);
  const when = (iso, options) =>
    new Intl.DateTimeFormat(undefined, { timeZone: zone, hourCycle: "h23", ...options }).format(new Date(iso));

  document.getElementById("zone").textContent = zone;
  document.getElementById("generated-at").textContent = when(data.generated_at, {
    dateStyle: "medium", timeStyle: "short",
  });

  function byKey(series, key) {
    // window start -> {name: usd}, from each window's rows by model and job type.
    const table = new Map(series.starts.map((start) => [start, {}]));
    const names = new Set();
    for (const window of series.windows) {
      const row = table.get(window.window_start);
      if (!row) continue;
      for (const item of window.by_model_and_type) {
        const name = item[key];
        names.add(name);
        row[name] = (row[name] || 0) + item.usd_micros / 1e6;
      }
    }
    return { table, names: [...names].sort() };
  }

  function stacked(containerId, series, key, tickEvery, tickFormat) {
    const container = d3.select("#" + containerId);
    const { table, names } = byKey(series, key);
    const starts = series.starts;
    const width = 560, height = 240, margin = { top: 10, right: 10, bottom: 28, left: 64 };
    const x = d3.scaleBand().domain(starts).range([margin.left, width - margin.right]).padding(0.15);
    const rows = starts.map((start) => ({ start, ...table.get(start) }));
    const stack = d3.stack().keys(names).value((row, name) => row[name] || 0)(rows);
    const top = d3.max(stack.length ? stack[stack.length - 1] : [], (point) => point[1]) || 0;
    const y = d3.scaleLinear().domain([0, top || 1]).nice().range([height - margin.bottom, margin.top]);
    const svg = container.append("svg").attr("viewBox", `0 0 ${width} ${height}`).attr("role", "img")
      .attr("width", "100%");
    svg.append("g").attr("transform", `translate(0,${height - margin.bottom})`)
      .call(d3.axisBottom(x).tickValues(starts.filter((_, i) => i % tickEvery === 0)).tickFormat(tickFormat));
    svg.append("g").attr("transform", `translate(${margin.left},0)`)
      .call(d3.axisLeft(y).ticks(5).tickFormat((v) => "$" + d3.format("~g")(v)));
    for (const layer of stack) {
      const group = svg.append("g").attr("fill", colors(layer.key));
      for (const point of layer) {
        const value = point[1] - point[0];
        if (value <= 0) continue;
        group.append("rect").attr("class", "mark")
          .attr("data-series", key).attr("data-name", layer.key)
          .attr("data-start", point.data.start).attr("data-usd", value)
          .attr("x", x(point.data.start)).attr("width", x.bandwidth())
          .attr("y", y(point[1])).attr("height", Math.max(1, y(point[0]) - y(point[1])))
          .append("title").text(`${layer.key}: ${money(value)} (${when(point.data.start, {
            dateStyle: "short", timeStyle: "short" })})`);
      }
    }
    const legend = container.append("div").attr("class", "legend");
    for (const name of names) {
      const item = legend.append("span");
      item.append("span").attr("class", "swatch").style("background", colors(name));
      item.append("span").text(name);
    }
    if (!names.length) legend.append("span").text("no model calls in this period");
  }

  function totals(series, id) {
    const total = series.windows.reduce((sum, window) => sum + window.usd, 0);
    document.getElementById(id).textContent = money(total);
    document.getElementById(id).dataset.usd = String(total);
  }

  function gauge(parent, label, parts, limit, figures, attrs) {
    const bar = d3.select(parent).append("div").attr("class", "bar");
    for (const [name, value] of Object.entries(attrs)) bar.attr("data-" + name, value);
    bar.append("div").attr("class", "label").text(label);
    const width = 400, height = 18;
    const svg = bar.append("svg").attr("viewBox", `0 0 ${width} ${height}`).attr("width", "100%")
      .attr("height", height).attr("preserveAspectRatio", "none");
    svg.append("rect").attr("width", width).attr("height", height).attr("fill", "#e9edf1");
    const x = d3.scaleLinear().domain([0, limit || 1]).range([0, width]).clamp(true);
    let start = 0;
    for (const [name, value, color] of parts) {
      if (value > 0) {
        svg.append("rect").attr("class", "mark").attr("data-part", name)
          .attr("x", x(start)).attr("width", Math.max(1, x(start + value) - x(start)))
          .attr("height", height).attr("fill", color);
      }
      start += value;
    }
    bar.append("div").attr("class", "figures").text(figures);
  }

  const budgets = data.budget.budgets;
  document.getElementById("no-budget").hidden = budgets.length > 0;
  for (const b of budgets) {
    const resets = b.resets_at ? ` · resets ${when(b.resets_at, { dateStyle: "short", timeStyle: "short" })}` : "";
    gauge(document.getElementById("budgets"), `${b.budget} budget (${b.source})`,
      [["spent", b.spent_usd, "#c0392b"], ["reserved", b.reserved_usd, "#e8a33d"]], b.limit_usd,
      `spent ${money(b.spent_usd)} · reserved ${money(b.reserved_usd)} · remaining ` +
        `${money(b.remaining_usd)} of ${money(b.limit_usd)}${resets}`,
      { budget: b.budget, "limit-usd": b.limit_usd, "spent-usd": b.spent_usd,
        "reserved-usd": b.reserved_usd, "remaining-usd": b.remaining_usd });
  }
  let limits = 0;
  for (const [kind, named] of Object.entries(data.limits)) {
    for (const [name, l] of Object.entries(named)) {
      if (l.limit === null) continue;
      limits += 1;
      const frees = l.frees_at ? ` · frees ${when(l.frees_at, { timeStyle: "medium" })}` : "";
      gauge(document.getElementById("limits"), `${kind} ${name.toUpperCase()} (${l.source})`,
        [["used", l.used, "#1f5fa8"]], l.limit, `used ${l.used} of ${l.limit}${frees}`,
        { kind, limit: name, "limit-value": l.limit, used: l.used });
    }
  }
  document.getElementById("no-limit").hidden = limits > 0;

  const hour = (iso) => when(iso, { hour: "2-digit", minute: "2-digit" });
  const day = (iso) => when(iso, { month: "short", day: "numeric" });
  stacked("hourly-model", data.hourly, "model", 6, hour);
  stacked("hourly-type", data.hourly, "job_type", 6, hour);
  stacked("daily-model", data.daily, "model", 5, day);
  stacked("daily-type", data.daily, "job_type", 5, day);
  totals(data.hourly, "hourly-total");
  totals(data.daily, "daily-total");
  document.body.dataset.drawn = "true";
})();
