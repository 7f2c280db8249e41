/** Text rendering helpers shared by command modules. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? '' : 's'} ago`;
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return unit(s, 'second');
  if (s < 3600) return unit(Math.round(s / 60), 'minute');
  if (s < 86400 * 2) return unit(Math.round(s / 3600), 'hour');
  if (s < 86400 * 14) return unit(Math.round(s / 86400), 'day');
  if (s < 86400 * 60) return unit(Math.round(s / 86400 / 7), 'week');
  if (s < 86400 * 730) return unit(Math.round(s / 86400 / 30), 'month');
  return unit(Math.round(s / 86400 / 365), 'year');
}

export function size(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)}${u[i]}`;
}

export function shortId(digest: string | undefined): string {
  return digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '<none>';
}

/** Go's time.Time String(), as docker prints CreatedAt: `2024-01-02 15:04:05 +0000 UTC`. */
export function dockerTime(iso: string | undefined): string {
  if (!iso) return '';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  return t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC').replace(/Z$/, ' +0000 UTC');
}

/**
 * Align tab-separated columns as docker's tabwriter does (min width 10, padding 3); the last
 * column is not padded.
 */
export function tabulate(text: string): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of lines) cells.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return lines
    .map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(Math.max(10, widths[i]! + 3)) : c)).join('').replace(/\s+$/, ''))
    .join('\n');
}

/** The header docker prints for a `table` column: HEADERS' name, else `CreatedSince` → `CREATED SINCE`. */
export function columnHeader(field: string, headers: Readonly<Record<string, string>>): string {
  return headers[field] ?? field.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/**
 * A command's default table (`table {{.A}}\t{{.B}}…`) without the template engine: what
 * gotemplate's renderRows prints for it, for the listings that run without --format (the
 * engine is loaded only when a --format is given). Every row has every column (a missing
 * field would print empty here and `<no value>` through the engine).
 */
export function defaultTable(rows: readonly Readonly<Record<string, unknown>>[], columns: readonly string[], headers: Readonly<Record<string, string>>): string {
  const lines = [columns.map((c) => columnHeader(c, headers)).join('\t')];
  for (const r of rows) lines.push(columns.map((c) => String(r[c] ?? '')).join('\t'));
  return tabulate(lines.join('\n'));
}

/** The Go template of a default table: `{{.A}}\t{{.B}}…` (without the `table ` prefix). */
export function tableTemplate(columns: readonly string[]): string {
  return columns.map((c) => `{{.${c}}}`).join('\t');
}

/** `--format` option as docker has it (a Go template, `table …` or `json`). */
export const FORMAT_OPTION = {
  type: 'string',
  describe: "Go template ('{{.ID}}', 'table {{.ID}}\\t{{.Size}}') or json",
} as const;
