export { SshTransport, type SshTransportOptions } from './ssh.js';
export { LocalTransport } from './local.js';
export { hostTransport, type HostTransportOptions } from './hosts.js';
export { CommandFailedError, type ExecOptions, type ExecResult, type HostConnection, type Transport } from './types.js';
export {
  appendKnownHost,
  checkHostKey,
  defaultKnownHostsFile,
  fingerprint,
  hostKeyName,
  parseKnownHosts,
  type HostKeyVerdict,
  type KnownHostEntry,
} from './known-hosts.js';
export { PASSPHRASE_ENV } from './auth.js';
