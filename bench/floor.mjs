#!/usr/bin/env node
// The floor: what runbook's remote work costs with no engine around it. Replays a recording made
// by bench/lib/record-wire.mjs — per host, the same wire lines (sudo, sh -c and all), the same
// stdin, in the same order, back to back over ONE raw ssh2 connection with setNoDelay, all hosts
// in parallel. Host keys are checked against the lab's known_hosts, as runbook does.
//
// With --one-exec, the least any tool could do: per host ONE exec running every recorded fact's
// bare command in one shell (bench/lib/wire-unwrap.mjs oneExec: no sudo/watchdog/timeout wrapper
// per command, no batch markers, runbook's lock left out), over one connection; each fact's exit
// code must match the recording's. Hosts still run in parallel, so the order between hosts (a
// standby's read of a row the primary writes) is not kept: the read waits for a recorded LSN.
//
// Usage: node bench/floor.mjs RECORDING.json --key FILE --known-hosts FILE [--one-exec]
// Prints JSON: { hosts, commands, handshake_ms (median), command_ms (median), slowest,
// first_connect_ms (from process start) }. Exit 1 when a
// command's exit code differs from the recording (then the floor did not do the same work).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import { feedStdin } from '../dist/src/shell/wire.js';
import { floorCodes, oneExec } from './lib/wire-unwrap.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { key: { type: 'string' }, 'known-hosts': { type: 'string' }, 'one-exec': { type: 'boolean', default: false } },
});
const [recordingFile] = positionals;
if (!recordingFile || !values.key || !values['known-hosts']) {
  console.error('usage: node bench/floor.mjs RECORDING.json --key FILE --known-hosts FILE');
  process.exit(2);
}
const recording = JSON.parse(readFileSync(recordingFile, 'utf8')).hosts;

// setup-warm-standby's re-run writes a marker row with a run-unique note ("verify pg2 <time>
// <random>") on the primary and polls the standby until exactly one such row arrives. Replaying the
// recorded note would insert it a second time and poll for 30 s: give each note a fresh value.
const MARKER_NOTE = /verify [a-z0-9-]+ \d{4}-\d\d-\d\dT[\d:.]+Z [a-z0-9]+/g;
const fresh = new Map();
const refresh = (text) =>
  text.replace(MARKER_NOTE, (note) => {
    if (!fresh.has(note)) fresh.set(note, `${note.split(' ').slice(0, 2).join(' ')} ${new Date().toISOString()} f${fresh.size}${process.pid}`);
    return fresh.get(note);
  });
for (const commands of Object.values(recording)) for (const c of commands) Object.assign(c, { line: refresh(c.line), stdin: refresh(c.stdin) });
const privateKey = readFileSync(values.key);

/** address → base64 key blobs, from plain (unhashed) known_hosts lines "name,addr type key". */
const known = new Map();
for (const line of readFileSync(values['known-hosts'], 'utf8').split('\n')) {
  const [names, , blob] = line.trim().split(/\s+/);
  if (!blob || names.startsWith('#')) continue;
  for (const n of names.split(',')) known.set(n, [...(known.get(n) ?? []), blob]);
}

function connect(user, host, port) {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('ready', () => {
      client.setNoDelay(true);
      resolve(client);
    });
    client.on('error', reject);
    client.connect({
      host,
      port,
      username: user,
      privateKey,
      hostVerifier: (key) => (known.get(host) ?? []).includes(key.toString('base64')),
    });
  });
}

/**
 * The stdin the command itself read: the wire wrapper reads exactly `head -c N` bytes; what the
 * recording holds past them are the heartbeats written while it ran.
 */
function inputOf(line, recorded) {
  const n = /__rb_in=\$\(head -c (\d+);/.exec(line);
  return n ? Buffer.from(recorded).subarray(0, Number(n[1])).toString() : '';
}

// As the transport does (src/shell/wire.ts): the input, then heartbeats and never EOF until the
// command exits, since the wrapper's watchdog kills a command whose stdin ends.
function run(client, { line, stdin }) {
  return new Promise((resolve, reject) => {
    client.exec(line, (err, stream) => {
      if (err) return reject(err);
      let code = null;
      const stop = feedStdin(stream, inputOf(line, stdin));
      stream.on('exit', (c) => (code = c));
      stream.on('data', () => {});
      stream.stderr.on('data', () => {});
      stream.on('close', () => {
        stop();
        resolve(code);
      });
    });
  });
}

/** --one-exec: the host's one script; stdin (the secrets) written whole, then EOF (no watchdog). */
function runOne(client, { line, stdin }) {
  return new Promise((resolve, reject) => {
    client.exec(line, (err, stream) => {
      if (err) return reject(err);
      let code = null;
      let out = '';
      stream.on('exit', (c) => (code = c));
      stream.on('data', (d) => (out += d));
      stream.stderr.on('data', () => {});
      stream.on('close', () => resolve({ code, codes: floorCodes(out) }));
      stream.end(stdin);
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const handshakes = [];
const perCommand = [];
const mismatches = [];
let slowest = { ms: 0 };
let firstConnectMs;
let factsRun = 0;

await Promise.all(
  Object.entries(recording).map(async ([target, commands]) => {
    const m = /^(.+)@(.+):(\d+)$/.exec(target);
    const t0 = performance.now();
    firstConnectMs ??= t0;
    const client = await connect(m[1], m[2], Number(m[3]));
    handshakes.push(performance.now() - t0);
    if (values['one-exec']) {
      const one = oneExec(commands);
      const t = performance.now();
      const r = await runOne(client, one);
      const ms = performance.now() - t;
      perCommand.push(ms);
      if (ms > slowest.ms) slowest = { ms: Number(ms.toFixed(1)), target, index: 0 };
      factsRun += one.facts;
      if (r.code !== 0 || JSON.stringify(r.codes) !== JSON.stringify(one.codes)) mismatches.push(`${target}: exit ${r.code}, fact exit codes ${JSON.stringify(r.codes)}, recorded ${JSON.stringify(one.codes)}`);
      client.end();
      return;
    }
    for (const [i, c] of commands.entries()) {
      const t = performance.now();
      const code = await run(client, c);
      const ms = performance.now() - t;
      perCommand.push(ms);
      if (ms > slowest.ms) slowest = { ms: Number(ms.toFixed(1)), target, index: i };
      if (code !== c.exitCode) mismatches.push(`${target}: exit ${code}, recorded ${c.exitCode}: ${c.line.slice(0, 80)}`);
    }
    client.end();
  }),
);

console.log(
  JSON.stringify({
    mode: values['one-exec'] ? 'one-exec' : 'replay',
    hosts: handshakes.length,
    commands: perCommand.length,
    ...(values['one-exec'] ? { facts: factsRun } : {}),
    handshake_ms: Number(median(handshakes).toFixed(1)),
    command_ms: Number(median(perCommand).toFixed(1)),
    slowest,
    first_connect_ms: Number(firstConnectMs.toFixed(1)),
  }),
);
if (mismatches.length) {
  console.error(`floor: ${mismatches.length} command(s) ended differently than in the recording:\n${mismatches.slice(0, 5).join('\n')}`);
  process.exitCode = 1;
}
