/**
 * vitest globalSetup of the e2e project: the labs come up once per run and go down afterwards,
 * also when tests fail. Two labs: `e2e-lab` (Debian layout) and `e2e-rhel` (RHEL layout) on
 * 10.231.20/21.0/24, brought up in parallel; not the demo's `lab`, which may be up.
 *
 * Env:
 *   RUNBOOK_LAB_REUSE=1        a lab that is already up is used as it is and left up; a lab that is
 *                              not up is brought up and taken down as usual. For development
 *                              against a lab you keep up with `runbook lab up`.
 *   RUNBOOK_LAB_KEEP=1         leave the labs this run brought up (to look around after a failure).
 *   RUNBOOK_LAB_LAYOUTS=debian only the Debian lab (or `rhel`); default both.
 *   RUNBOOK_LAB_NAME / RUNBOOK_LAB_RHEL_NAME  lab names (default e2e-lab / e2e-rhel; `lab` with
 *                              RUNBOOK_LAB_REUSE=1: against the demo's lab).
 *   RUNBOOK_TEST_SLOT=N        labs of this run's own (names -sN, subnets 10.231.(32N+k)): see test/support/lab.ts.
 *
 * Without RUNBOOK_LAB_REUSE, a lab that is already up is an error: it may be someone's, and a
 * test run must not take it down, nor run against state it did not make.
 *
 * Tests read `inject('labInventory')` / `inject('labRhelInventory')` (also in process.env as
 * RUNBOOK_LAB_INVENTORY / RUNBOOK_LAB_RHEL_INVENTORY), or use test/support/lab.ts.
 */
import type { TestProject } from 'vitest/node';
import { labDown, labStatus, labUp } from '../../src/lab/index.js';
import { labInventoryPath, labNames, labSpecs, type LabLayout } from '../support/lab.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Inventory of the Debian-layout lab ('' when RUNBOOK_LAB_LAYOUTS leaves it out). */
    labInventory: string;
    /** Inventory of the RHEL-layout lab ('' when RUNBOOK_LAB_LAYOUTS leaves it out). */
    labRhelInventory: string;
  }
}

const say = (line: string) => process.stderr.write(`[lab] ${line}\n`);

function wantedLayouts(): LabLayout[] {
  const raw = (process.env.RUNBOOK_LAB_LAYOUTS ?? 'debian,rhel').split(',').map((s) => s.trim());
  const layouts = raw.filter((s): s is LabLayout => s === 'debian' || s === 'rhel');
  if (layouts.length === 0) throw new Error(`RUNBOOK_LAB_LAYOUTS=${process.env.RUNBOOK_LAB_LAYOUTS}: use debian, rhel or both`);
  return layouts;
}

/** Brings one lab up; returns whether this run owns it (and so takes it down). */
async function bringUp(layout: LabLayout): Promise<boolean> {
  const name = labNames[layout];
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1';
  if ((await labStatus({ name })).up) {
    if (!reuse) {
      throw new Error(
        `lab ${name} is already up. Set RUNBOOK_LAB_REUSE=1 to run against it (it stays up), ` +
          `or take it down first: runbook lab down --name ${name}`,
      );
    }
    say(`reusing lab ${name} (RUNBOOK_LAB_REUSE=1): not bringing it up or down`);
    return false;
  }
  const { ms } = await labUp({ name, layout, subnet: labSpecs[layout].subnet }, say);
  say(`lab ${name} up in ${(ms / 1000).toFixed(1)} s`);
  return true;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const layouts = wantedLayouts();
  const owned: string[] = [];
  const results = await Promise.allSettled(
    layouts.map(async (layout) => {
      if (await bringUp(layout)) owned.push(labNames[layout]);
    }),
  );
  const downOwned = async () => {
    await Promise.all(owned.map((name) => labDown({ name }, say)));
  };
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await downOwned(); // the lab that did come up must not outlive the failed setup
    throw failed.reason;
  }

  const inventory = (layout: LabLayout) => (layouts.includes(layout) ? labInventoryPath(layout) : '');
  project.provide('labInventory', inventory('debian'));
  project.provide('labRhelInventory', inventory('rhel'));
  process.env.RUNBOOK_LAB_INVENTORY = inventory('debian');
  process.env.RUNBOOK_LAB_RHEL_INVENTORY = inventory('rhel');
  return async () => {
    if (process.env.RUNBOOK_LAB_KEEP === '1') {
      if (owned.length) say(`RUNBOOK_LAB_KEEP=1: leaving ${owned.join(', ')} up (runbook lab down --name NAME)`);
      return;
    }
    await downOwned();
  };
}
