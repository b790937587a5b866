/**
 * Hostile values (issue 13, point 1) on the RHEL layout, on a lab of its own
 * (testLab('hostile-rhel', 16)); the Debian layout is hostile-values.test.ts (side by side). The
 * cases themselves are hostile-values-suite.ts.
 */
import { hostileValues } from './hostile-values-suite.js';

hostileValues('rhel', 'hostile-rhel', 16);
