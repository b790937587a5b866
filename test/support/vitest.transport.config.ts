import { defineConfig } from 'vitest/config';

// The transport's e2e files against a loopback sshd they start themselves: no lab needed.
export default defineConfig({
  test: {
    include: ['test/e2e/transport*.test.ts', 'test/e2e/quoting.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
