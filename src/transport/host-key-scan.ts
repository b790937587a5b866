/**
 * First contact with a host, as `ssh` shows it: read the host key the server presents (the same
 * algorithm ssh2 negotiates on a real connection), then drop the handshake before authenticating.
 */
import { Client } from 'ssh2';
import { UnreachableError } from '../errors.js';
import { fingerprint, keyTypeOf } from './known-hosts.js';

export interface ScannedKey {
  blob: Buffer;
  /** "ssh-ed25519 SHA256:…", as ssh-keygen -l prints it. */
  display: string;
}

export function scanHostKey(name: string, address: string, port: number, timeoutMs = 15_000): Promise<ScannedKey> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    const done = () => {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end();
    };
    client.on('error', (error: Error) => {
      done();
      if (key) resolve({ blob: key, display: `${keyTypeOf(key)} ${fingerprint(key)}` });
      else reject(new UnreachableError(name, `${address}:${port}: ${error.message}`, { cause: error }));
    });
    client.on('ready', () => done());
    client.connect({
      host: address,
      port,
      readyTimeout: timeoutMs,
      username: 'runbook-host-key-scan',
      hostVerifier: (blob: Buffer) => {
        key = Buffer.from(blob);
        return false; // ends the handshake: the key is all we came for
      },
    });
  });
}
