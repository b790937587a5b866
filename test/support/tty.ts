/**
 * A real pseudo-terminal for tests of interactive paths: the command runs in a detached tmux
 * session, keys are sent when the screen shows what they answer, and the screen is returned once
 * the command has printed its exit code.
 */
import { execFileSync } from 'node:child_process';

const tmux = (...a: string[]): string => execFileSync('tmux', a, { encoding: 'utf8' });

export interface KeyStep {
  /** Wait until the screen matches… */
  when: RegExp;
  /** …then send these keys (tmux send-keys names: 'Enter', 'Down', 'y'). */
  send: string[];
}

export async function ttySession(name: string, command: string, keys: KeyStep[], timeoutMs = 30_000): Promise<string> {
  tmux('new-session', '-d', '-s', name, '-x', '200', '-y', '50', `${command}; echo EXIT=$?; sleep 60`);
  try {
    for (const k of keys) {
      await waitUntil(() => k.when.test(tmux('capture-pane', '-p', '-t', name)), timeoutMs);
      tmux('send-keys', '-t', name, ...k.send);
    }
    await waitUntil(() => /EXIT=\d+/.test(tmux('capture-pane', '-p', '-t', name)), timeoutMs);
    return tmux('capture-pane', '-p', '-t', name, '-S', '-200');
  } finally {
    tmux('kill-session', '-t', name);
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the terminal`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
