/**
 * One colour policy for every command (and the libraries under them: chalk, listr2's colorette,
 * child runs): FORCE_COLOR (not 0/false) forces colour even into a pipe; otherwise NO_COLOR (any
 * value) turns it off; otherwise colour only on a terminal. Applied once, before any UI loads.
 */
import chalk from 'chalk';

export type ColorLevel = 0 | 1 | 2 | 3;

export function colorLevel(env: NodeJS.ProcessEnv, isTTY: boolean): ColorLevel {
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number.parseInt(force, 10);
    return (Number.isInteger(n) && n >= 1 && n <= 3 ? n : 1) as ColorLevel;
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  return isTTY ? 1 : 0;
}

export function applyColorPolicy(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stdout.isTTY)): ColorLevel {
  const level = colorLevel(env, isTTY);
  chalk.level = level;
  // colorette (listr2) reads these at import: make it agree with chalk.
  if (level === 0) {
    delete env.FORCE_COLOR;
    env.NO_COLOR = '1';
  } else {
    delete env.NO_COLOR;
    env.FORCE_COLOR = String(level);
  }
  return level;
}
