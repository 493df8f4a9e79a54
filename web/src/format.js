// How figures are shown.

export function number(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

export function rate(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return n >= 100 ? `${number(n)}/s` : `${n.toFixed(1)}/s`;
}

export function bytes(n) {
  if (n === undefined || n === null || n < 0 || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function duration(ms) {
  if (ms === undefined || ms === null || ms < 0 || Number.isNaN(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s %= 86400;
  const hours = Math.floor(s / 3600);
  s %= 3600;
  const m = Math.floor(s / 60);
  s %= 60;
  if (d > 0) return `${d}d ${hours}h ${m}m`;
  if (hours > 0) return `${hours}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

export function time(ts) {
  if (ts === undefined || ts === null || ts <= 0) return '–';
  const d = new Date(ts);
  const pad = (v, w = 2) => String(v).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A watermark in ms since the epoch; Long.MIN_VALUE and friends mean "none yet". */
export function watermark(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms) || ms <= -9e15 || ms >= 9e15) return 'no watermark';
  return `${time(ms)}.${String(Math.abs(ms) % 1000).padStart(3, '0')}`;
}

export function percent(ratio) {
  if (ratio === undefined || ratio === null || Number.isNaN(ratio)) return '–';
  return `${Math.round(ratio * 100)}%`;
}

/** A vertex's name as the plan gives it ("A<br/>B" for chained operators) split into operators. */
export function operators(description) {
  return String(description || '').split(/<br\s*\/?>|\s->\s/).map((s) => s.trim()).filter((s) => s !== '');
}
