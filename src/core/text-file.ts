/**
 * Reading a text input file (inventory, vars file, `-e @file`): UTF-8 or refused. Node's 'utf8'
 * decoding turns bad bytes into U+FFFD silently, so a value would change without a word.
 */
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The file's text; exit 2 with file:line:col and the byte offset of the first byte that is not UTF-8. */
export function readTextFile(path: string): string {
  return decodeUtf8(readFileSync(path), path);
}

export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) (line++, (lineStart = i + 1));
    const hex = (bytes[at] ?? 0).toString(16).padStart(2, '0');
    throw new BadInputError(`not UTF-8: byte 0x${hex} at byte offset ${at} (save the file as UTF-8)`, { file, line, col: at - lineStart + 1 });
  }
}

/** Offset of the first byte that starts no valid UTF-8 sequence (one pass). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
    }
    // Overlong 3/4-byte forms, surrogates and code points past U+10FFFF.
    const d = b[i + 1] ?? 0;
    if ((c === 0xe0 && d < 0xa0) || (c === 0xed && d > 0x9f) || (c === 0xf0 && d < 0x90) || (c === 0xf4 && d > 0x8f)) return i;
    i += n + 1;
  }
  return b.length;
}
