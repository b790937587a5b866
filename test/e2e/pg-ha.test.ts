/**
 * The PostgreSQL acceptance chain of issue 5 on the Debian layout, on a 2-node lab of its own
 * (testLab('pgha-deb', 2)); the RHEL layout is pg-ha-rhel.test.ts (side by side). The chain itself
 * is pg-ha-chain.ts.
 */
import { pgHaChain } from './pg-ha-chain.js';

pgHaChain('debian', 'pgha-deb', 2);
