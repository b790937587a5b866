/**
 * Ansible itself as the oracle: run its CLIs on the same inputs. ansible-core is installed by
 * scripts/ensure-deps.sh; a missing binary fails the test (never skips it).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/inventories');

const ENV = {
  ...process.env,
  ANSIBLE_LOCALHOST_WARNING: 'False',
  ANSIBLE_NOCOLOR: 'True',
  ANSIBLE_DEPRECATION_WARNINGS: 'False',
  // Ansible warns and goes on with a half-read inventory; the oracle must not.
  ANSIBLE_INVENTORY_UNPARSED_FAILED: 'True',
  ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: 'True',
};

// `ansible PATTERN --list-hosts` costs ~1 s per pattern; its InventoryManager answers them all in one go.
const LIST_HOSTS_PY = `
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
args = json.loads(sys.argv[1])
im = InventoryManager(loader=DataLoader(), sources=args['sources'])
print(json.dumps({p: [h.name for h in im.get_hosts(pattern=p)] for p in args['patterns']}))
`;

/** The host names Ansible selects for each pattern. */
export async function ansibleListHosts(sources: string[], patterns: string[]): Promise<Record<string, string[]>> {
  const out = await runAnsible(ansiblePython(), ['-c', LIST_HOSTS_PY, JSON.stringify({ sources, patterns })]);
  return JSON.parse(out) as Record<string, string[]>;
}

/** The Python that ansible-inventory runs on (its shebang): another python3 on PATH may lack the module. */
function ansiblePython(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const bin = join(dir, 'ansible-inventory');
    if (existsSync(bin)) return /^#!\s*(\S+)/.exec(readFileSync(bin, 'utf8'))?.[1] ?? 'python3';
  }
  return 'ansible-inventory'; // not installed: runAnsible reports it
}

export function runAnsible(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: ENV, timeout: 60_000, cwd: FIXTURES, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT' || /No module named 'ansible'/.test(stderr)) {
        reject(new Error(`ansible-core is not installed (${command}): run scripts/ensure-deps.sh, which installs it`));
      } else if (error) {
        reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** Run `fn` over `items`, at most `limit` at a time (each ansible call costs ~0.5-1 s of CPU). */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
