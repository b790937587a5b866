import type { Command as Program } from 'commander';

// Placeholder until its owner lands the command; replaced, never shipped.
export function registerExec(_program: Program): void {}
