#!/usr/bin/env node
// Tiny bin: everything lives in the compiled CLI; its top-level catch maps errors to exit codes.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
