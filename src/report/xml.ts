/** Text for XML content and attributes: masked, escaped, and without what XML 1.0 cannot hold. */
import { maskSecrets } from '../shell/secret.js';

// Characters outside XML 1.0's Char production (control chars, lone surrogates, U+FFFE/FFFF).
const INVALID_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlEscape(text: string): string {
  return maskSecrets(text)
    .replace(INVALID_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
