/** The real CLI run in this process (main()), its stdout and stderr captured, for e2e files. */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface CapturedCli {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function runCliInProcess(args: string[]): Promise<CapturedCli> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const started = Date.now();
  try {
    const code = await main(args);
    return { code, stdout, stderr, ms: Date.now() - started };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
