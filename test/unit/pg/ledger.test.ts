import { describe, expect, it } from 'vitest';
import { buildLedger, decideLedger, findDivergence, parseHistory, parseWaldump, segmentName, withCheckpoint } from '../../../src/modules/postgres/ledger.js';
import { rewindConnectionFailure } from '../../../src/modules/postgres/steps/rejoin.js';

// pg_waldump 15 output: a crash-killed primary's last writes past the standby's received LSN.
const WALDUMP = `rmgr: Heap        len (rec/tot):     59/    59, tx:        748, lsn: 0/03000148, prev 0/03000110, desc: INSERT off 3 flags 0x00, blkref #0: rel 1663/5/16390 blk 0
rmgr: Btree       len (rec/tot):     64/    64, tx:        748, lsn: 0/03000188, prev 0/03000148, desc: INSERT_LEAF off 3, blkref #0: rel 1663/5/16393 blk 1
rmgr: Transaction len (rec/tot):     34/    34, tx:        748, lsn: 0/030001C8, prev 0/03000188, desc: COMMIT 2026-12-01 21:30:01.123456 UTC
rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/030001F0, prev 0/030001C8, desc: RUNNING_XACTS nextXid 750 latestCompletedXid 748 oldestRunningXid 749; 1 xacts: 749
rmgr: Heap        len (rec/tot):     59/    59, tx:        749, lsn: 0/03000228, prev 0/030001F0, desc: INSERT off 4 flags 0x00, blkref #0: rel 1663/5/16390 blk 0
`;
const END = 'pg_waldump: error: error in WAL record at 0/3000228: invalid record length at 0/3000268: wanted 24, got 0';

describe('divergence point from timeline histories', () => {
  it('parses a history file', () => {
    expect(parseHistory('1\t0/3000148\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n')).toEqual([
      { tli: 1, switchLsn: '0/3000148' },
      { tli: 2, switchLsn: '0/5000000' },
    ]);
  });

  it('the old primary on timeline 1, the new one on 2 branched at its switch point', () => {
    expect(findDivergence({ tli: 1, history: [] }, { tli: 2, history: [{ tli: 1, switchLsn: '0/3000148' }] })).toMatchObject({ kind: 'at', lsn: '0/3000148', tli: 1 });
  });

  it('two failovers: the node on 2 diverged from the primary on 3 where 3 branched', () => {
    const node = { tli: 2, history: [{ tli: 1, switchLsn: '0/3000148' }] };
    const primary = { tli: 3, history: [{ tli: 1, switchLsn: '0/3000148' }, { tli: 2, switchLsn: '0/5000028' }] };
    expect(findDivergence(node, primary)).toMatchObject({ kind: 'at', lsn: '0/5000028', tli: 2 });
  });

  it('same timeline: nothing diverged; unrelated histories: unknown', () => {
    expect(findDivergence({ tli: 2, history: [] }, { tli: 2, history: [] }).kind).toBe('none');
    expect(findDivergence({ tli: 2, history: [{ tli: 7, switchLsn: '0/1' }] }, { tli: 3, history: [{ tli: 1, switchLsn: '0/2' }] }).kind).toBe('unknown');
    // the primary is in the node's past (the node is ahead on a later timeline of the same lineage)
    expect(findDivergence({ tli: 2, history: [{ tli: 1, switchLsn: '0/3000000' }] }, { tli: 1, history: [] }).kind).toBe('none');
  });
});

describe('what pg_waldump says is past the divergence', () => {
  it('transactions with their commit time and relations; records per rmgr; read to the end', () => {
    const s = parseWaldump(WALDUMP, END);
    expect(s).toMatchObject({ ok: true, records: 5, firstLsn: '0/03000148', lastLsn: '0/03000228', rmgrs: { Heap: 2, Btree: 1, Transaction: 1, Standby: 1 } });
    expect(s.transactions).toEqual([
      { xid: 748, status: 'COMMIT', time: '2026-12-01 21:30:01.123456 UTC', relations: ['1663/5/16390', '1663/5/16393'], records: 3 },
      { xid: 749, status: null, time: null, relations: ['1663/5/16390'], records: 1 },
    ]);
  });

  it('no record past the start is an empty, complete scan; any other stop is an error', () => {
    expect(parseWaldump('', 'pg_waldump: error: could not find a valid record after 0/3000148')).toMatchObject({ ok: true, records: 0 });
    // The named start segment preallocated but never written (after a switchover): nothing past the start.
    expect(parseWaldump('', 'pg_waldump: error: WAL segment size must be a power of two between 1 MB and 1 GB, but the WAL file "000000020000000000000008" header specifies 0 bytes')).toMatchObject({ ok: true, records: 0 });
    expect(parseWaldump('', 'pg_waldump: error: could not open directory "x": Permission denied')).toMatchObject({ ok: false, error: expect.stringContaining('Permission denied') });
  });
});

describe('the ledger decision', () => {
  const at = { kind: 'at' as const, lsn: '0/3000148', tli: 1, reason: '' };
  const hint = 're-run with -e accept_data_loss=true (or --approve rejoin-ledger)';
  it('committed transactions past the divergence: refused unless accepted, naming them', () => {
    const g = buildLedger('pg1', at, parseWaldump(WALDUMP, END));
    const v = decideLedger(g, false, hint);
    expect(v).toMatchObject({ kind: 'refuse' });
    expect(v.reason).toMatch(/1 committed transactions \[xid 748 committed 2026-12-01 21:30:01.123456 UTC/);
    expect(v.reason).toContain('accept_data_loss');
    expect(decideLedger(g, true, hint)).toMatchObject({ kind: 'save', needsApproval: true });
  });

  it('only checkpoints past it: saved, no approval needed; nothing past it: nothing to do', () => {
    const ckpt = 'rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03000148, prev 0/03000110, desc: CHECKPOINT_SHUTDOWN redo 0/3000148; tli 1; prev tli 1\n';
    expect(decideLedger(buildLedger('pg1', at, parseWaldump(ckpt, END)), false, hint)).toMatchObject({ kind: 'save', needsApproval: false });
    expect(decideLedger(buildLedger('pg1', at, parseWaldump('', 'could not find a valid record after 0/3000148')), false, hint).kind).toBe('nothing');
    expect(decideLedger(buildLedger('pg1', { kind: 'none', reason: 'same timeline' }, null), false, hint).kind).toBe('nothing');
  });

  it('unknown (history unreadable, WAL unreadable) is refused unless accepted', () => {
    expect(decideLedger(buildLedger('pg1', { kind: 'unknown', reason: 'no history' }, null), false, hint).kind).toBe('refuse');
    expect(decideLedger(buildLedger('pg1', at, parseWaldump('', 'Permission denied')), false, hint).kind).toBe('refuse');
    expect(decideLedger(buildLedger('pg1', at, parseWaldump('', 'Permission denied')), true, hint).kind).toBe('save');
  });

  it('segment names', () => {
    expect(segmentName(1, '0/3000148')).toBe('000000010000000000000003');
    expect(segmentName(2, '1/A5000000')).toBe('0000000200000001000000A5');
  });
});

describe('pg_rewind failures that are about the connection, not the data', () => {
  it('an unreachable source or a wrong password is named, never "impossible"', () => {
    expect(rewindConnectionFailure('pg_rewind: error: could not connect to server: connection to server at "10.0.0.12", port 5432 failed: FATAL:  password authentication failed for user "replicator"')).toContain('password authentication failed');
    expect(rewindConnectionFailure('pg_rewind: error: connection to server at "10.0.0.12", port 5432 failed: timeout expired')).toContain('timeout expired');
    expect(rewindConnectionFailure('pg_rewind: fatal: target server needs to use either data checksums or "wal_log_hints = on"')).toBeUndefined();
  });
});

describe('no WAL at the divergence point', () => {
  const missing = parseWaldump('checkpoint=0/5000060 1\n', 'pg_waldump: error: could not find file "000000010000000000000004": No such file or directory');
  const zeroes = parseWaldump('', 'pg_waldump: error: WAL segment size must be a power of two between 1 MB and 1 GB, but the WAL file "000000010000000000000006" header specifies 0 bytes');
  const at = { kind: 'at' as const, lsn: '0/4000000', tli: 1, reason: 'r' };
  it('is proof of nothing lost only when the last checkpoint is before it (WAL from a checkpoint on is kept)', () => {
    expect(withCheckpoint(missing, { lsn: '0/3000060', tli: 1 }, { lsn: '0/4000000', tli: 1 })).toMatchObject({ ok: true, records: 0 });
    expect(decideLedger(buildLedger('pg1', at, withCheckpoint(missing, { lsn: '0/3000060', tli: 1 }, at)), false, 'hint').kind).toBe('nothing');
    expect(withCheckpoint(zeroes, { lsn: '0/5FFFFF0', tli: 1 }, { lsn: '0/6000000', tli: 1 }).ok).toBe(true);
  });
  it('is unknown, so refused, when the checkpoint is past it or on a later timeline: writes whose WAL is gone', () => {
    for (const ckpt of [{ lsn: '0/5000060', tli: 1 }, { lsn: '0/3000060', tli: 2 }, null]) {
      const scan = withCheckpoint(missing, ckpt, { lsn: '0/4000000', tli: 1 });
      expect(scan.ok).toBe(false);
      expect(scan.error).toMatch(/no WAL at the divergence point/);
      expect(decideLedger(buildLedger('pg1', at, scan), false, 'pass accept_data_loss=true').kind).toBe('refuse');
    }
  });
  it('a scan that read WAL is not touched', () => {
    const read = parseWaldump('', 'pg_waldump: error: could not find a valid record after 0/4000148');
    expect(withCheckpoint(read, { lsn: '0/9000000', tli: 1 }, { lsn: '0/4000000', tli: 1 })).toBe(read);
  });
});
