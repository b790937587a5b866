/**
 * Ansible itself as the oracle: run its CLIs on the same inputs. ansible-core is installed by
 * scripts/ensure-deps.sh; a missing binary fails the test (never skips it).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
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

export function runAnsible(command: 'ansible' | 'ansible-inventory', args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: ENV, timeout: 60_000, cwd: FIXTURES, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
        reject(new Error(`${command} is not installed: run scripts/ensure-deps.sh (it installs ansible-core)`));
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
