/** `key=value` lines, the output format of runbook's multi-value facts. */

/** `key=value` lines into a map (later keys win); lines without `=` are ignored. */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}
