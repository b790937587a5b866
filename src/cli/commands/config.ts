/**
 * `runbook config`: like `ansible-config dump`, the values runbook shares with Ansible, each with
 * its effective setting and where it came from (ansible.cfg file:line, an ANSIBLE_* variable, or
 * the default); `--only-changed` as in ansible-config. Command-line flags still win over these.
 */
import type { Command as Program } from 'commander';
import { ansibleConfig, formatOrigin, SETTING_KEYS, type AnsibleConfig } from '../../config/ansible-cfg.js';

/** What runbook does when neither the file nor the environment sets the value. */
const RUNBOOK_DEFAULTS: Record<(typeof SETTING_KEYS)[number], string> = {
  inventory: 'none: give -i PATH',
  remoteUser: 'the current user',
  privateKeyFile: 'ssh config, ssh-agent, ~/.ssh/id_*',
  hostKeyChecking: 'True',
  forks: 'all selected hosts; exec: 10',
  vaultPasswordFile: 'none',
};

function show(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => `'${String(v)}'`).join(', ')}]`;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

export function formatConfig(config: AnsibleConfig, onlyChanged: boolean): string {
  const lines = [`config file = ${config.file ?? 'None'}`];
  for (const id of SETTING_KEYS) {
    const s = config[id];
    if (onlyChanged && s.origin.kind === 'default') continue;
    const value = s.origin.kind === 'default' && s.value === undefined ? `(${RUNBOOK_DEFAULTS[id]})` : show(s.value);
    lines.push(`${s.name}(${formatOrigin(s.origin)}) = ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

export function registerConfig(program: Program): void {
  program
    .command('config')
    .description('The settings runbook shares with Ansible (ansible.cfg, ANSIBLE_*): value and origin of each')
    .option('--only-changed', 'only the values set in ansible.cfg or the environment')
    .action((o: { onlyChanged?: boolean }) => {
      process.stdout.write(formatConfig(ansibleConfig(), Boolean(o.onlyChanged)));
    });
}
