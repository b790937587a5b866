/**
 * Longest files first (test/e2e/durations.json, seconds measured in CI): with a few workers the
 * suite then ends near total/workers instead of waiting on a long file that started last. A fresh
 * clone has no vitest cache, and its default order (unknown files as found) is arbitrary.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const durations: Record<string, number> = JSON.parse(readFileSync(new URL('../e2e/durations.json', import.meta.url), 'utf8'));
/** A file not in the table: a guess between the short and the long ones. */
const UNKNOWN_S = 60;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const weight = (f: TestSpecification) => durations[basename(f.moduleId)] ?? UNKNOWN_S;
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
