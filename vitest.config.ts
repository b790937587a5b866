import { defineConfig } from 'vitest/config';

// Three projects: fast unit tests (pure functions); end-to-end files that share the global labs
// (`lab`, `rhel`, brought up once by global-setup) and so run one at a time; and end-to-end files
// that bring up labs of their own (test/support/lab.ts `testLab`) or talk to a loopback sshd, which
// run side by side. Projects with different worker counts cannot share a group, so the groups run
// in order: unit, then the files with labs of their own (in parallel), then the shared-lab files.
const sharedLabFiles = ['engine', 'keepalives', 'lab', 'nfs', 'round-trips', 'vip'].map((f) => `test/e2e/${f}.test.ts`);
const e2e = { testTimeout: 180_000, hookTimeout: 300_000 };

export default defineConfig({
  test: {
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
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          ...e2e,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: sharedLabFiles,
          // 2 cores: the lab hosts idle most of the time, the runs wait on PostgreSQL and SSH.
          maxWorkers: Number(process.env.RUNBOOK_E2E_WORKERS ?? 3),
          sequence: { groupOrder: 1 },
          ...e2e,
        },
      },
    ],
  },
});
