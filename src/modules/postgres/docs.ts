/** The inventory contract (docs/inventory-contract.md), exported by each pg runbook as `docs` for `runbook describe`. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// From src/modules/postgres (tsx) the docs are three levels up; from dist/src/modules/postgres four.
const candidates = ['../../../docs/inventory-contract.md', '../../../../docs/inventory-contract.md'].map((p) => fileURLToPath(new URL(p, import.meta.url)));

export function inventoryContract(): string {
  const file = candidates.find((f) => existsSync(f));
  return file ? readFileSync(file, 'utf8') : 'See docs/inventory-contract.md in the runbook package.';
}
