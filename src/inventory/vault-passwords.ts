/**
 * Where vault passwords come from, as with Ansible: `--vault-password-file FILE` (an executable
 * file is run and its output is the password), `--vault-id [ID@]FILE|prompt`, `--ask-vault-pass`,
 * and ansible.cfg's vault_password_file. Prompts only in a terminal: without one it says which flag to use.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { VaultKeyring } from './vault.js';

export interface VaultPasswordOptions {
  vaultPasswordFile?: string[];
  vaultId?: string[];
  askVaultPass?: boolean;
}

export type PasswordPrompt = (message: string) => Promise<string>;

function readPasswordFile(file: string): string {
  let executable = false;
  try {
    accessSync(file, constants.X_OK);
    executable = true;
  } catch {
    // a plain file
  }
  try {
    if (executable) return execFileSync(file, [], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'] }).trim();
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new BadInputError(`cannot read the vault password from ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

async function ttyPrompt(message: string): Promise<string> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new BadInputError('a vault password prompt needs a terminal: give --vault-password-file FILE or --vault-id ID@FILE instead');
  }
  const { password } = await import('@inquirer/prompts');
  return password({ message, mask: true }).catch(() => {
    throw new BadInputError('no vault password given (prompt cancelled)');
  });
}

export async function vaultKeyring(o: VaultPasswordOptions, prompt: PasswordPrompt = ttyPrompt): Promise<VaultKeyring> {
  const keyring = new VaultKeyring();
  for (const file of o.vaultPasswordFile ?? []) keyring.add('default', readPasswordFile(file), file);
  for (const spec of o.vaultId ?? []) {
    const at = spec.indexOf('@');
    const id = at > 0 ? spec.slice(0, at) : 'default';
    const source = at >= 0 ? spec.slice(at + 1) : spec;
    if (source === 'prompt') keyring.add(id, await prompt(`Vault password (${id}):`), 'prompt');
    else keyring.add(id, readPasswordFile(source), source);
  }
  if (o.askVaultPass) keyring.add('default', await prompt('Vault password:'), 'prompt');
  return keyring;
}
