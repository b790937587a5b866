/**
 * The engine's view of the inventory and transport modules (owned elsewhere), loaded lazily so
 * that `runbook list/describe` never load ssh2. Typed here against their documented contracts.
 */
import type { ConnectionSpec, Inventory, InventoryHost } from '../inventory/types.js';
import type { Transport } from '../transport/types.js';

export interface InventoryModule {
  loadInventory(paths: string[]): Promise<Inventory> | Inventory;
  selectHosts(inventory: Inventory, pattern?: string): InventoryHost[];
  connectionSpec(host: InventoryHost, overrides?: Partial<ConnectionSpec>): ConnectionSpec;
}

export interface TransportModule {
  SshTransport: new (...args: any[]) => Transport;
}

// Specifiers held in variables: these modules may land after the engine; fail with a clear message.
const INVENTORY = '../inventory/index.js';
const TRANSPORT = '../transport/index.js';

export async function inventoryModule(): Promise<InventoryModule> {
  return (await import(INVENTORY)) as InventoryModule;
}

export async function transportModule(): Promise<TransportModule> {
  return (await import(TRANSPORT)) as TransportModule;
}
