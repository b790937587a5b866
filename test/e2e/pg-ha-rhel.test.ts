/**
 * The PostgreSQL acceptance chain of issue 5 on the RHEL layout, on a 2-node lab of its own
 * (testLab('pgha-rhel', 3)); the Debian layout is pg-ha.test.ts (side by side). The chain itself
 * is pg-ha-chain.ts.
 */
import { pgHaChain } from './pg-ha-chain.js';

pgHaChain('rhel', 'pgha-rhel', 3);
