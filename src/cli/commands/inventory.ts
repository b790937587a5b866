/**
 * `runbook inventory --list | --host NAME -i PATH [-i PATH…] [--limit PATTERN]`: the inventory as
 * `ansible-inventory` prints it, with secrets masked.
 */
import type { Command as Program } from 'commander';
import { BadInputError } from '../../errors.js';
import { hostVarsJson, selectHosts, toAnsibleListJson } from '../../inventory/index.js';
import { inventoryOption, limitPattern, loadInventoryFrom, vaultOptions, type VaultFlags } from '../options.js';

interface InventoryOptions extends VaultFlags {
  inventory: string[];
  list?: boolean;
  host?: string;
  limit?: string;
}

export function registerInventory(program: Program): void {
  vaultOptions(inventoryOption(program.command('inventory')))
    .description('Show an Ansible inventory as runbook reads it (the JSON of ansible-inventory; secrets masked)')
    .option('--list', 'print every group and host with merged variables')
    .option('--host <name>', "print one host's merged variables")
    .option('-l, --limit <pattern>', 'only hosts matching an Ansible pattern (web:&prod, pg*, all:!db1)')
    .action(async (options: InventoryOptions) => {
      if (options.inventory.length === 0) throw new BadInputError('inventory: give at least one -i PATH');
      if (Boolean(options.list) === Boolean(options.host)) throw new BadInputError('inventory: give either --list or --host NAME');
      const inventory = await loadInventoryFrom(options);
      // Without --limit an inventory of groups only is still listable; a --limit must match something.
      const limit = limitPattern(options.limit);
      const selected = limit === undefined ? [...inventory.hosts.values()] : selectHosts(inventory, limit);
      let output: object;
      if (options.host !== undefined) {
        const host = selected.find((h) => h.name === options.host);
        if (!host) throw new BadInputError(`inventory: no host "${options.host}"${options.limit ? ` within --limit ${options.limit}` : ''}`);
        output = hostVarsJson(host);
      } else {
        output = toAnsibleListJson(inventory, selected);
      }
      process.stdout.write(`${JSON.stringify(output, null, 4)}\n`);
    });
}
