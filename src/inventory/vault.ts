/**
 * Ansible Vault, format 1.1 and 1.2 with AES256, as Ansible's docs publish it: PBKDF2-SHA256 (10000
 * rounds) over the password and a salt gives an AES-256-CTR key, an HMAC-SHA256 key and the IV; the
 * HMAC over the ciphertext is checked before anything is decrypted. Node's crypto does all of it, so
 * no dependency. Every decrypted value is registered as a secret: masked wherever runbook prints.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { BadInputError, type SourcePosition } from '../errors.js';
import { Secret } from '../shell/secret.js';

const HEADER = /^\$ANSIBLE_VAULT;(\d+\.\d+);([A-Z0-9]+)(?:;([^\s;]+))?\s*$/;

export function isVaultText(text: string): boolean {
  return text.trimStart().startsWith('$ANSIBLE_VAULT;');
}

export interface VaultPassword {
  /** The vault id (`--vault-id ID@SOURCE`), `default` otherwise. */
  id: string;
  password: Secret;
  /** Where it came from, for messages (a file, "prompt"). */
  source: string;
}

/** The passwords given on the command line (and ansible.cfg), tried as Ansible tries them. */
export class VaultKeyring {
  readonly passwords: VaultPassword[] = [];

  add(id: string, password: string, source: string): void {
    const value = password.replace(/\r?\n$/, '');
    if (value === '') throw new BadInputError(`vault password from ${source} is empty`);
    this.passwords.push({ id, password: new Secret(value, `vault password ${id}`), source });
  }

  /**
   * The plain text of a vault envelope. A 1.2 envelope names its vault id: that password is tried
   * first, then the others (Ansible does the same unless DEFAULT_VAULT_ID_MATCH is set).
   */
  decrypt(text: string, where: SourcePosition): string {
    const envelope = parseEnvelope(text, where);
    if (this.passwords.length === 0) {
      throw new BadInputError(
        'this value is encrypted with Ansible Vault and no vault password was given: ' +
          'pass --vault-password-file FILE, --vault-id [ID@]FILE or --ask-vault-pass',
        where,
      );
    }
    const ordered = [
      ...this.passwords.filter((p) => p.id === envelope.vaultId),
      ...this.passwords.filter((p) => p.id !== envelope.vaultId),
    ];
    for (const p of ordered) {
      const plain = decryptWith(envelope, p.password.reveal());
      if (plain !== undefined) return plain;
    }
    const tried = ordered.map((p) => `${p.id} (${p.source})`).join(', ');
    throw new BadInputError(`cannot decrypt the Ansible Vault value: no given vault password fits (tried ${tried})`, where);
  }
}

interface Envelope {
  version: string;
  vaultId?: string;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

/** A whole-file vault has no position of its own: its header is line 1, its body from line 2. */
const lineOf = (where: SourcePosition, line: number): SourcePosition => (where.line === undefined ? { file: where.file, line, col: 1 } : where);

function parseEnvelope(text: string, where: SourcePosition): Envelope {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const m = HEADER.exec(lines[0] ?? '');
  if (!m) throw new BadInputError('invalid Ansible Vault header (expected $ANSIBLE_VAULT;1.1;AES256)', lineOf(where, 1));
  const [, version, cipher, vaultId] = m as unknown as [string, string, string, string | undefined];
  if (version !== '1.1' && version !== '1.2') throw new BadInputError(`Ansible Vault format ${version} is not supported (1.1 and 1.2 are)`, lineOf(where, 1));
  if (cipher !== 'AES256') throw new BadInputError(`Ansible Vault cipher ${cipher} is not supported (AES256 is)`, lineOf(where, 1));
  const hex = lines.slice(1).join('');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new BadInputError('the Ansible Vault body is not hexadecimal: the file is damaged', lineOf(where, 2));
  // The body is hex of "salt-hex \n hmac-hex \n ciphertext-hex".
  const parts = Buffer.from(hex, 'hex').toString('latin1').split('\n');
  if (parts.length !== 3 || !parts.every((p) => /^(?:[0-9a-fA-F]{2})+$/.test(p))) {
    throw new BadInputError('the Ansible Vault body is malformed: the file is damaged', lineOf(where, 2));
  }
  const [salt, hmac, ciphertext] = parts.map((p) => Buffer.from(p, 'hex')) as [Buffer, Buffer, Buffer];
  return { version, ...(vaultId ? { vaultId } : {}), salt, hmac, ciphertext };
}

/** undefined when the HMAC says the password is wrong. */
function decryptWith(e: Envelope, password: string): string | undefined {
  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), e.salt, 10_000, 80, 'sha256');
  const key = derived.subarray(0, 32);
  const hmacKey = derived.subarray(32, 64);
  const iv = derived.subarray(64, 80);
  const mac = createHmac('sha256', hmacKey).update(e.ciphertext).digest();
  if (mac.length !== e.hmac.length || !timingSafeEqual(mac, e.hmac)) return undefined;
  const decipher = createDecipheriv('aes-256-ctr', key, iv);
  const padded = Buffer.concat([decipher.update(e.ciphertext), decipher.final()]);
  // PKCS#7 padding to the AES block size.
  const pad = padded[padded.length - 1] ?? 0;
  const body = pad >= 1 && pad <= 16 ? padded.subarray(0, padded.length - pad) : padded;
  return body.toString('utf8');
}

/**
 * An inline `!vault |` value, decrypted only when read (as Ansible does): an inventory listing
 * shows it the way `ansible-inventory --list` does, `{"__ansible_vault": "<envelope>"}`.
 */
export class VaultValue {
  #plain: string | undefined;
  constructor(
    readonly envelope: string,
    public pos: SourcePosition,
    private readonly keyring: VaultKeyring,
  ) {}

  /** The decrypted text, registered as a secret so every output masks it. */
  reveal(): string {
    if (this.#plain === undefined) {
      this.#plain = this.keyring.decrypt(this.envelope, this.pos);
      registerSecret(this.#plain);
    }
    return this.#plain;
  }

  toJSON(): { __ansible_vault: string } {
    return { __ansible_vault: this.envelope };
  }
}

/** Mark a decrypted value as secret (the Secret constructor records it for masking); strings only, so a vaulted port does not mask every "5432". */
export function registerSecret(value: unknown): void {
  if (typeof value === 'string') new Secret(value, 'vaulted value');
  else if (Array.isArray(value)) value.forEach(registerSecret);
  else if (value && typeof value === 'object' && !(value instanceof VaultValue)) Object.values(value).forEach(registerSecret);
}
