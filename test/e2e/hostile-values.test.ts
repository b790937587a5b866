/**
 * Hostile values (issue 13, point 1) on the Debian layout, on a lab of its own
 * (testLab('hostile', 15)); the RHEL layout is hostile-values-rhel.test.ts (side by side). The
 * cases themselves are hostile-values-suite.ts.
 */
import { hostileValues } from './hostile-values-suite.js';

hostileValues('debian', 'hostile', 15);
