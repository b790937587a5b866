import { describe, expect, it } from 'vitest';
import type { ClusterReader } from '../../../src/drill/cluster-reader.js';
import { prepareWorkloadDb } from '../../../src/drill/probe-setup.js';
import type { Command } from '../../../src/shell/command.js';

describe('the workload database', () => {
  it('is created through psql\'s \\gexec (a template literal drops a lone backslash: psql got "gexec" and the kill drill died in its probe phase)', async () => {
    const sent: Command[] = [];
    const reader = {
      layout: async () => ({ port: 5432, binDir: '/usr/lib/postgresql/15/bin' }),
      exec: async (_host: string, command: Command) => {
        sent.push(command);
        return { code: 0, stdout: '', stderr: '' };
      },
    } as unknown as ClusterReader;
    await prepareWorkloadDb(reader, 'pg1');
    expect(sent).toHaveLength(1);
    const text = sent[0]!.toString();
    expect(text).toMatch(/^\\gexec$/m);
    expect(text).toContain("CREATE DATABASE %I OWNER %I', 'runbook_drill'::text, 'runbook_drill'::text");
  });
});
