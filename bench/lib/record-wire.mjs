// Preload (`node --import bench/lib/record-wire.mjs bin/runbook.js run …` with BENCH_RECORD=FILE):
// records every command runbook sends over ssh2 — the exact wire line (sudo and sh -c wrapping
// included), its stdin and exit code — per target address, in order — and when the first
// connection started. bench/floor.mjs replays the
// recording, so the floor does byte-for-byte the remote work runbook did, minus the engine.
// stdin may hold a secret param: the file is written 0600 and only ever under bench/out/.
// For fact batches it also keeps each fact's exit code (the "@@RB-… end I CODE" markers on stdout),
// which the one-exec floor (bench/floor.mjs --one-exec) compares with its own.
import { writeFileSync } from 'node:fs';
import ssh2 from 'ssh2';

const file = process.env.BENCH_RECORD;
if (file) {
  const hosts = {};
  // when the first connection starts, from process start: runbook's start-up, to split it from per-step cost
  let firstConnectMs;
  const { connect, exec } = ssh2.Client.prototype;
  ssh2.Client.prototype.connect = function recordedConnect(...args) {
    firstConnectMs ??= performance.now();
    return connect.apply(this, args);
  };
  ssh2.Client.prototype.exec = function recordedExec(line, opts, cb) {
    const done = typeof opts === 'function' ? opts : cb;
    const { host, port, username } = this.config ?? {};
    const key = `${username}@${host}:${port}`;
    const entry = { line, stdin: '', exitCode: null, factCodes: [] };
    (hosts[key] ??= []).push(entry);
    const wrapped = (err, stream) => {
      if (stream) {
        const write = stream.write.bind(stream);
        stream.write = (data, ...rest) => {
          entry.stdin += String(data);
          return write(data, ...rest);
        };
        stream.on('exit', (code) => (entry.exitCode = code ?? null));
        let out = '';
        stream.on('data', (d) => (out += d));
        stream.on('close', () => {
          entry.factCodes = [...out.matchAll(/^@@RB-[0-9a-f]+@@ end \d+ (\d+)$/gm)].map((m) => Number(m[1]));
          out = '';
        });
      }
      done(err, stream);
    };
    return typeof opts === 'function' ? exec.call(this, line, wrapped) : exec.call(this, line, opts, wrapped);
  };
  process.on('exit', () => writeFileSync(file, JSON.stringify({ first_connect_ms: firstConnectMs, hosts }, null, 1), { mode: 0o600 }));
}
