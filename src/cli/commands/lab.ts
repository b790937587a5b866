import type { Command as Program } from 'commander';

// Placeholder until its owner lands the command; replaced, never shipped.
export function registerLab(_program: Program): void {}
