/**
 * The host key policy behind ssh2's hostVerifier: known key → go; unknown key → refuse with the
 * fingerprint and how to accept it, or record it when accept-new was asked for; changed or revoked
 * key → refuse, always. ssh2 accepts every key when no verifier is set, so one always is.
 */
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  hostKeyName,
  keyTypeOf,
  readKnownHosts,
} from './known-hosts.js';

export interface HostKeyCheckOptions {
  /** Address and port as connected to (the name looked up in known_hosts), or HostKeyAlias. */
  address: string;
  port: number;
  /** Written to on accept; read with `otherFiles` (the rest of UserKnownHostsFile, GlobalKnownHostsFile). */
  knownHostsFile: string;
  otherFiles?: string[];
  acceptNew: boolean;
  /** StrictHostKeyChecking no: an unknown key is accepted (and recorded) with a warning. */
  acceptUnknown?: boolean;
  warn?: (message: string) => void;
}

export interface HostKeyCheck {
  verify(keyBlob: Buffer): boolean;
  /** Why the key was refused, once verify() said no. */
  readonly refusal: string | undefined;
}

export function hostKeyCheck(options: HostKeyCheckOptions): HostKeyCheck {
  let refusal: string | undefined;
  const name = hostKeyName(options.address, options.port);
  const file = options.knownHostsFile;
  return {
    get refusal() {
      return refusal;
    },
    verify(keyBlob) {
      const key = `${keyTypeOf(keyBlob)} ${fingerprint(keyBlob)}`;
      // Read on every connect: a key accepted by a parallel connection counts at once.
      const entries = [file, ...(options.otherFiles ?? [])].flatMap((f) => readKnownHosts(f));
      const verdict = checkHostKey(entries, name, keyBlob);
      switch (verdict.status) {
        case 'known':
          return true;
        case 'unknown':
          if (options.acceptNew || options.acceptUnknown) {
            if (options.acceptUnknown) {
              (options.warn ?? ((m: string) => process.stderr.write(`[WARNING]: ${m}\n`)))(
                `host key of ${name} (${key}) was not known and is accepted unverified (StrictHostKeyChecking no); recorded in ${file}`,
              );
            }
            if (file !== '/dev/null') appendKnownHost(file, name, keyBlob);
            return true;
          }
          refusal =
            `host key of ${name} is not known (${key}), so it cannot be verified; refusing. ` +
            `Check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then accept it ` +
            `with --accept-new-host-keys, or add it: ssh-keyscan -p ${options.port} ${options.address} >> ${file}`;
          return false;
        case 'changed':
          refusal =
            `HOST KEY OF ${name} HAS CHANGED: it now presents ${key}, but ${file}:${verdict.line} holds another key. ` +
            `Someone may be intercepting this connection (a man-in-the-middle attack), or the host was reinstalled. ` +
            `Refusing, whatever the flags. If the change is expected, remove the old key: ssh-keygen -f ${file} -R '${name}'`;
          return false;
        case 'revoked':
          refusal = `host key of ${name} (${key}) is marked @revoked in ${file}:${verdict.line}; refusing`;
          return false;
      }
    },
  };
}
