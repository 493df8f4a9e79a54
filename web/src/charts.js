// Live line charts (uPlot): a time axis and one series per name, keeping
// the last `keep` points; the page pushes a new point at every poll.

const COLORS = ['#1971c2', '#e8590c', '#2f9e44', '#9c36b5', '#c92a2a', '#0c8599', '#5c940d', '#d6336c'];

export class LiveChart {
  /**
   * el: the container; title; names: the series; format: value -> text for
   * the axis and legend.
   */
  constructor(el, title, names, format = (v) => String(v), keep = 120) {
    this.el = el;
    this.names = names;
    this.keep = keep;
    this.data = [[], ...names.map(() => [])];
    const series = [{}, ...names.map((name, i) => ({
      label: name,
      stroke: COLORS[i % COLORS.length],
      width: 1.5,
      value: (u, v) => (v === null || v === undefined ? '–' : format(v)),
    }))];
    this.plot = new uPlot({
      title,
      width: Math.max(300, el.clientWidth || 600),
      height: 200,
      series,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, ticks) => ticks.map(format), size: 70 }],
    }, this.data, el);
    this.onResize = () => this.plot.setSize({ width: Math.max(300, this.el.clientWidth || 600), height: 200 });
    window.addEventListener('resize', this.onResize);
  }

  /** Adds the values (one per series, null for none) at `ms`. */
  push(ms, values) {
    this.data[0].push(ms / 1000);
    values.forEach((v, i) => this.data[i + 1].push(v === undefined || Number.isNaN(v) ? null : v));
    if (this.data[0].length > this.keep) for (const column of this.data) column.shift();
    this.plot.setData(this.data);
  }

  get points() {
    return this.data[0].length;
  }

  destroy() {
    window.removeEventListener('resize', this.onResize);
    this.plot.destroy();
  }
}

/**
 * Turns counters into per-second rates between two polls: feed it
 * {key: counter} and the time; it answers {key: rate} (undefined for keys
 * seen for the first time or that went backwards, e.g. after a restart).
 */
export class Rates {
  constructor() {
    this.last = new Map();
  }

  update(ms, counters) {
    const out = {};
    for (const [key, value] of Object.entries(counters)) {
      const before = this.last.get(key);
      if (before && ms > before.ms && value >= before.value) {
        out[key] = ((value - before.value) * 1000) / (ms - before.ms);
      }
      this.last.set(key, { ms, value });
    }
    return out;
  }
}
