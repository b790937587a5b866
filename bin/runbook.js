#!/usr/bin/env node
// Tiny bin: everything lives in the compiled CLI; its top-level catch maps errors to exit codes.
import { main } from '../dist/src/cli/main.js';

// `runbook … | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
