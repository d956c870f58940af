// Bar and line charts as SVG, built with DOM calls (labels are Text nodes). Data is a list of
// rows; `x` names the label column and `y` the value column (defaults: the first text and
// the first number column). At most 100 points are drawn.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function columns(rows, props) {
  const sample = rows.find((row) => row && typeof row === 'object') ?? {};
  const keys = Object.keys(sample);
  const x = props.x ?? keys.find((key) => typeof sample[key] === 'string') ?? keys[0];
  const y = props.y ?? keys.find((key) => typeof sample[key] === 'number' && key !== x);
  return { x, y };
}

// `rows`: [{label, value}, …] or [number, …]. Returns an <svg>, or null when nothing numeric.
export function renderChart(rows, props = {}) {
  if (!Array.isArray(rows)) return null;
  const points = [];
  const { x, y } = columns(rows, props);
  rows.slice(0, 100).forEach((row, index) => {
    const value = typeof row === 'number' ? row : Number(row?.[y]);
    if (!Number.isFinite(value)) return;
    const label = typeof row === 'number' ? String(index + 1) : String(row?.[x] ?? index + 1);
    points.push({ label, value });
  });
  if (points.length === 0) return null;

  const width = 640, height = 320, left = 48, bottom = 56, top = 16, right = 16;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const high = Math.max(0, ...points.map((p) => p.value));
  const low = Math.min(0, ...points.map((p) => p.value));
  const span = high - low || 1;
  const toY = (value) => top + plotHeight - ((value - low) / span) * plotHeight;
  const step = plotWidth / points.length;

  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart' });
  const title = svg('title');
  title.textContent = props.title ?? `${y ?? 'value'} by ${x ?? 'item'}`;
  chart.append(title);
  chart.append(svg('line', { x1: left, y1: toY(0), x2: width - right, y2: toY(0), class: 'axis' }));
  for (const value of [low, high]) {
    const tick = svg('text', { x: left - 6, y: toY(value) + 4, 'text-anchor': 'end', class: 'tick' });
    tick.textContent = Number(value.toPrecision(4)).toString();
    chart.append(tick);
  }
  const type = props.type === 'line' ? 'line' : 'bar';
  if (type === 'line') {
    const path = points.map((p, i) => `${i ? 'L' : 'M'}${left + step * (i + 0.5)},${toY(p.value)}`).join(' ');
    chart.append(svg('path', { d: path, class: 'series', fill: 'none' }));
  }
  points.forEach((point, i) => {
    const centre = left + step * (i + 0.5);
    const mark = type === 'line'
      ? svg('circle', { cx: centre, cy: toY(point.value), r: 3, class: 'mark' })
      : svg('rect', {
        x: centre - step * 0.35, width: step * 0.7, class: 'mark',
        y: Math.min(toY(point.value), toY(0)), height: Math.abs(toY(point.value) - toY(0)),
      });
    const tip = svg('title');
    tip.textContent = `${point.label}: ${point.value}`;
    mark.append(tip);
    chart.append(mark);
    if (points.length <= 24) {
      const label = svg('text', { x: centre, y: height - bottom + 16, 'text-anchor': 'middle', class: 'tick' });
      label.textContent = point.label.length > 10 ? `${point.label.slice(0, 9)}…` : point.label;
      chart.append(label);
    }
  });
  return chart;
}
