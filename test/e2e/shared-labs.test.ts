/**
 * The e2e cases on the two shared global labs (`lab`, `rhel`; test/e2e/global-setup.ts): one file,
 * so they run one after another in one worker while the files with labs of their own run beside
 * them. Each module under shared/ registers its describes when imported; run one with -t, e.g.
 * `npx vitest run --project e2e-shared -t setup-vip`.
 */
import './shared/lab.js';
import './shared/engine.js';
import './shared/keepalives.js';
import './shared/nfs.js';
import './shared/round-trips.js';
import './shared/vip.js';
