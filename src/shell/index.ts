export { Command, sh, raw, joinCommands, pathWord, stdinText, type ShellValue, type CommandPart, type StdinText } from './command.js';
export { quoteWord } from './quote.js';
export { Secret, secret, isSecret, maskSecrets, maskDeep, MASK } from './secret.js';
export { sql, SqlFragment, quoteLiteral, quoteIdent, type SqlValue } from './sql.js';
export { toWire, SUDO_PROMPT, PREAMBLE_FAILED, BECOME_STARTED, type WireCommand, type WireOptions } from './wire.js';
