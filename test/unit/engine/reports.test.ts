import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { renderJunit } from '../../../src/report/junit.js';
import { renderJson, type RunReport } from '../../../src/report/json.js';
import { recap } from '../../../src/engine/results.js';
import { secret } from '../../../src/shell/secret.js';

const s = secret('junit-secret-value', 'x');
const results: RunReport['results'] = [
  { stepId: 'a', title: 'A', host: 'h1', status: 'changed', message: 'did <it> & "more"', commands: ['echo 1'], durationMs: 10 },
  { stepId: 'b', title: 'B', host: 'h1', status: 'failed', message: 'boom', commands: [], durationMs: 5, failure: { kind: 'step', message: `failed with ${s.reveal()}`, command: 'false', exitCode: 1, stderrTail: 'bad\u0000\u001b[31mred]]>' } },
  { stepId: 'a', title: 'A', host: 'h2', status: 'skipped', message: 'not here', commands: [], durationMs: 0 },
  { stepId: 'a', title: 'A', host: 'h3', status: 'unreachable', message: 'refused', commands: [], durationMs: 0 },
];
const report: RunReport = { runId: 'r', runbook: { id: 'rb', description: 'd', hash: 'h' }, mode: 'apply', startedAt: '2024-01-01T00:00:00Z', durationMs: 15, exitCode: 5, interrupted: false, params: { pw: s }, recap: recap(results, ['h1', 'h2', 'h3']), results };

describe('reports', () => {
  it('JUnit parses as XML, counts match the results, failures carry command, exit code and stderr, secrets masked', () => {
    const xml = renderJunit(report);
    expect(xml).not.toContain('junit-secret-value');
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    const suite = doc.testsuites.testsuite;
    expect(suite['@_name']).toBe('rb');
    expect([suite['@_tests'], suite['@_failures'], suite['@_errors'], suite['@_skipped']].map(Number)).toEqual([4, 1, 1, 1]);
    const failed = suite.testcase.find((t: any) => t['@_name'] === 'b@h1');
    expect(failed.failure['@_message']).toBe('failed with ***');
    expect(failed.failure['#text']).toContain('command: false');
    expect(failed.failure['#text']).toContain('exit code: 1');
    expect(failed.failure['#text']).toContain('bad[31mred]]>');
  });
  it('JSON is masked and complete', () => {
    const text = renderJson(report);
    expect(text).not.toContain('junit-secret-value');
    const back = JSON.parse(text);
    expect(back.params.pw).toBe('***');
    expect(back.recap.find((r: any) => r.host === 'h1')).toMatchObject({ changed: 1, failed: 1 });
  });
});
