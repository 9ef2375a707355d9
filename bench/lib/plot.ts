import { writeFile } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Plot } from './report.js';

// The one font installed on the benchmark machines; naming it keeps vega's text layout and
// resvg's rendering in agreement, and nothing is fetched.
const FONT = 'DejaVu Sans';

/** The vega-lite spec of a plot: one line with points per series, a legend when there are several. */
export function plotSpec(plot: Plot): TopLevelSpec {
  const scale = (log?: boolean) => (log ? { type: 'log' as const } : { zero: false });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: plot.title,
    width: 640,
    height: 360,
    background: 'white',
    // Room for the last tick label, which vega centres on the plot's right edge.
    padding: { left: 8, top: 8, right: 24, bottom: 8 },
    config: { font: FONT },
    data: { values: plotRows(plot) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: plot.xLabel, scale: scale(plot.xLog) },
      y: { field: 'y', type: 'quantitative', title: plot.yLabel, scale: scale(plot.yLog) },
      // The suite's order of lines, not alphabetical: "ours" first when the suite puts it first.
      color: {
        field: 'line',
        type: 'nominal',
        title: null,
        scale: { domain: plot.lines.map((l) => l.label) },
        legend: plot.lines.length > 1 ? { orient: 'bottom', direction: 'horizontal' } : null,
      },
    },
  };
}

/** The points as rows; a log axis cannot place zero or negatives, so those are left out there. */
function plotRows(plot: Plot) {
  const fits = (value: number, log?: boolean) => Number.isFinite(value) && (!log || value > 0);
  return plot.lines.flatMap(({ label, points }) =>
    points.filter(([x, y]) => fits(x, plot.xLog) && fits(y, plot.yLog)).map(([x, y]) => ({ line: label, x, y })),
  );
}

/** The plot as a PNG, rendered offline: vega-lite -> vega (headless) -> SVG -> resvg. */
export async function renderPlot(plot: Plot): Promise<Buffer> {
  const view = new View(parse(compile(plotSpec(plot)).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // Twice the SVG size, so the text stays sharp on high-density screens.
    const png = new Resvg(svg, {
      font: { loadSystemFonts: true, defaultFontFamily: FONT },
      fitTo: { mode: 'zoom', value: 2 },
    }).render();
    return png.asPng();
  } finally {
    view.finalize();
  }
}

export async function writePlot(plot: Plot, path: string): Promise<void> {
  await writeFile(path, await renderPlot(plot));
}
