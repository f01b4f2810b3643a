// Draw each lab trend over its window: points (red when flagged), the reference band, CTCAE grade bands and the
// dose dates inside the window.
// A censored value ("<5", ">11.0") is only a bound: an open triangle at the bound (pointing down for "<",
// up for ">"), reached by dashed lines, with the comparator in its tooltip.
(function () {
  const data = JSON.parse(document.getElementById("trend-data").textContent);
  const gradeColours = { 1: "rgba(255,214,102,0.18)", 2: "rgba(255,159,67,0.2)", 3: "rgba(238,82,83,0.2)", 4: "rgba(136,14,79,0.22)" };
  const bands = {
    id: "bands",
    beforeDatasetsDraw(chart, _args, options) {
      const { ctx, chartArea, scales } = chart;
      const fill = (from, to, colour) => {
        const top = scales.y.getPixelForValue(Math.min(to, scales.y.max));
        const bottom = scales.y.getPixelForValue(Math.max(from, scales.y.min));
        if (bottom <= top) return;
        ctx.fillStyle = colour;
        ctx.fillRect(chartArea.left, top, chartArea.right - chartArea.left, bottom - top);
      };
      ctx.save();
      for (const band of options.grades) fill(band.from, band.to, gradeColours[band.grade] || "transparent");
      const ref = options.reference;
      if (ref.low !== null || ref.high !== null) fill(ref.low ?? scales.y.min, ref.high ?? scales.y.max, "rgba(100,116,139,0.18)");
      ctx.strokeStyle = "#334155";
      ctx.setLineDash([4, 4]);
      for (const dose of options.doses) {
        const x = scales.x.getPixelForValue(Date.parse(dose));
        if (x < chartArea.left || x > chartArea.right) continue;
        ctx.beginPath(); ctx.moveTo(x, chartArea.top); ctx.lineTo(x, chartArea.bottom); ctx.stroke();
      }
      ctx.restore();
    },
  };
  for (const trend of data) {
    const canvas = document.querySelector(`canvas[data-trend="${trend.id}"]`);
    if (!canvas) continue;
    const points = trend.points.map((p) => ({ x: Date.parse(p.x), y: p.y, flag: p.flag, grade: p.grade, comparator: p.comparator || "" }));
    const xs = points.map((p) => p.x).concat(trend.doses.map((d) => Date.parse(d)));
    const colour = (p) => (p.flag && p.flag !== "N" ? "#b00020" : "#1f5fbf");
    const censored = (i) => points[i] && points[i].comparator !== "";
    const chart = new Chart(canvas, {
      type: "line",
      data: { datasets: [{ label: `${trend.name} (${trend.unit})`, data: points, borderColor: "#1f5fbf",
        pointStyle: points.map((p) => (p.comparator ? "triangle" : "circle")),
        pointRotation: points.map((p) => (p.comparator.startsWith("<") ? 180 : 0)),
        pointRadius: points.map((p) => (p.comparator ? 6 : 4)),
        pointBorderColor: points.map(colour), pointBorderWidth: points.map((p) => (p.comparator ? 2 : 1)),
        pointBackgroundColor: points.map((p) => (p.comparator ? "#ffffff" : colour(p))),
        segment: { borderDash: (s) => (censored(s.p0DataIndex) || censored(s.p1DataIndex) ? [6, 4] : undefined) } }] },
      options: {
        animation: false, maintainAspectRatio: false, parsing: false,
        scales: { x: { type: "linear",
          min: trend.window.start ? Date.parse(trend.window.start) : Math.min(...xs) - 3600e3,
          max: trend.window.end ? Date.parse(trend.window.end) : Math.max(...xs) + 3600e3,
          ticks: { callback: (v) => new Date(v).toISOString().slice(0, 10) } },
          // The reference band is always in view, whatever the values.
          y: { beginAtZero: false, grace: "5%", suggestedMin: trend.reference.low ?? undefined,
            suggestedMax: trend.reference.high ?? undefined } },
        plugins: { legend: { display: false }, bands: { grades: trend.grade_bands, reference: trend.reference, doses: trend.doses },
          tooltip: { callbacks: { label: (c) => `${c.raw.comparator}${c.raw.y} ${trend.unit}${c.raw.flag ? " " + c.raw.flag : ""}${c.raw.grade ? " G" + c.raw.grade : ""}${c.raw.comparator ? " (censored: the lab reported a bound)" : ""}` } } },
      },
      plugins: [bands],
    });
    canvas.dataset.ready = String(chart.data.datasets[0].data.length);
  }
})();
