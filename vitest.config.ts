import { defineConfig } from 'vitest/config';

import LongestFirst from './test/support/sequencer.js';

// Three projects: fast unit tests (pure functions), first; then, side by side in one group of
// workers, the end-to-end files that bring up labs of their own (test/support/lab.ts `testLab`)
// or talk to a loopback sshd, and the one file of cases on the shared global labs (`lab`, `rhel`,
// brought up by global-setup), whose cases run one after another. Longest files start first.
const sharedLabFiles = ['test/e2e/shared-labs.test.ts'];
// 2 cores: the lab hosts idle most of the time, the runs wait on PostgreSQL and SSH.
const e2eWorkers = Number(process.env.RUNBOOK_E2E_WORKERS ?? 3);
const e2e = { testTimeout: 180_000, hookTimeout: 300_000, maxWorkers: e2eWorkers, sequence: { groupOrder: 1 } };

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e-shared',
          include: sharedLabFiles,
          globalSetup: ['test/e2e/global-setup.ts'],
          ...e2e,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: sharedLabFiles,
          ...e2e,
        },
      },
    ],
  },
});
