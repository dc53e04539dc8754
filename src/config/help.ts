// What users read about the options: `--help` and `.env.example`, both made from the option
// table so neither can miss an option.
import { flagName, type OptionSpec } from './option.js';
import { generalOptions } from './options/general.js';
import { limitOptions } from './options/limits.js';
import { OPTIONS, type ConfigKey } from './schema.js';

export interface OptionGroup {
  readonly title: string;
  readonly keys: readonly ConfigKey[];
}

const GROUP_TITLES = {
  general: 'General and the operations server (/health, /metrics)',
  noray: 'noray front: NAT punchthrough and UDP relay',
  lobby: 'lobby front: Orion-compatible lobbies and peer-to-peer mediation',
  wsrelay: 'wsrelay front: CarParty-compatible WebSocket relay',
  tcprelay: 'tcprelay front: Rocco-compatible TCP relay',
  limits: 'Limits, shared by every front',
} as const;

type GroupId = keyof typeof GROUP_TITLES;

function spec(key: ConfigKey): OptionSpec<unknown> {
  return OPTIONS[key] as OptionSpec<unknown>;
}

function groupOf(key: ConfigKey): GroupId {
  if (key in limitOptions) return 'limits';
  if (key in generalOptions) return 'general';
  const { env } = spec(key);
  if (env.startsWith('NORAY_LOBBY_')) return 'lobby';
  if (env.startsWith('NORAY_WSRELAY_')) return 'wsrelay';
  if (env.startsWith('NORAY_TCPRELAY_')) return 'tcprelay';
  return 'noray';
}

/** Every option once, by front, in table order within each group. */
export function optionGroups(): OptionGroup[] {
  const keys = Object.keys(OPTIONS) as ConfigKey[];
  return (Object.keys(GROUP_TITLES) as GroupId[])
    .map((id) => ({ title: GROUP_TITLES[id], keys: keys.filter((key) => groupOf(key) === id) }))
    .filter((group) => group.keys.length > 0);
}

const DURATION = /^\d+(\.\d+)?\s*(us|ms|s|m|h|hr|d|w|mo|yr)$/i;
const BYTE_SIZE = /^\d+(\.\d+)?\s*(b|kb|mb|gb|tb|pb)(ps)?$/i;

/** The value placeholder shown after a flag: `--socket-port PORT`, `--udp-relay-timeout DURATION`. */
export function placeholder(key: ConfigKey): string {
  const { env, default: fallback } = spec(key);
  if (env.endsWith('_PORT')) return 'PORT';
  if (env.endsWith('_PORTS') && !/^\d+$/.test(fallback)) return 'PORTS';
  if (env.endsWith('_HOST')) return 'HOST';
  if (env.endsWith('_CHARSET')) return 'CHARS';
  if (env === 'NORAY_LOGLEVEL') return 'LEVEL';
  if (DURATION.test(fallback)) return 'DURATION';
  if (BYTE_SIZE.test(fallback)) return 'SIZE';
  if (fallback === 'true' || fallback === 'false') return 'BOOL';
  if (/^\d+$/.test(fallback)) return 'N';
  return 'VALUE';
}

const VALUE_SYNTAX: Record<string, string> = {
  PORT: 'PORT: 0-65535 (0 = any free port) or "off"',
  PORTS: 'PORTS: 49152-51200, 2048+3, 2048,2049 (combinable) or "off"',
  DURATION: 'DURATION: 500ms, 30s, 5m, 4hr, 1d (us ms s m h hr d w mo yr; a bare number is seconds)',
  SIZE: 'SIZE: 128kb, 1Gb (b kb mb gb tb, powers of 1024; a bare number is bytes)',
  BOOL: 'BOOL: true or false',
  N: 'N: a whole number',
  HOST: 'HOST: an IP address or host name to listen on (0.0.0.0: every IPv4 address, ::: every address)',
};

export function helpText(): string {
  const lines = [
    'Usage: noray [options]',
    '       noray doctor [HOST] [--json] [--port PORT] ...   why players cannot connect (noray doctor --help)',
    '',
    'Every option can also be set by its environment variable or in a .env file.',
    'Precedence: flag > environment > .env file > default.',
    '',
    'Values:',
    ...Object.values(VALUE_SYNTAX).map((syntax) => `  ${syntax}`),
    '',
    '  -h, --help              show this help',
    '  -v, --version           print the version',
    '      --dotenv PATH       read this dotenv file instead of ./.env',
  ];
  for (const group of optionGroups()) {
    lines.push('', `${group.title}:`);
    for (const key of group.keys) {
      const option = spec(key);
      const value = placeholder(key);
      const aliases = option.aliases?.length ? ` (also --${option.aliases.join(', --')})` : '';
      lines.push(`  --${flagName(option)} ${value}${aliases}`);
      lines.push(`      ${option.describe}`);
      // An empty default (a secret left unset) gives nothing away.
      const shownDefault = option.secret && option.default !== '' ? '<redacted>' : JSON.stringify(option.default);
      lines.push(`      env ${option.env}, default ${shownDefault}`);
    }
  }
  return lines.join('\n');
}

/** A dotenv value as written in .env.example: quoted when a parser could misread it. */
export function envValue(value: string): string {
  if (/^[\w.,+:/@-]+$/.test(value)) return value;
  const quote = ["'", '"', '`'].find((candidate) => !value.includes(candidate)) ?? "'";
  return `${quote}${value}${quote}`;
}

/** The text of `.env.example`: every option, commented out, with its default. */
export function envExample(): string {
  const lines = [
    '# noray configuration: every option with its default.',
    '# Copy this file to .env in the directory noray runs in (or pass --dotenv FILE) and',
    '# uncomment what you change. Precedence: flag > environment > .env file > default.',
    '# Generated from the option table (src/config/options/*.ts) by `npm run env-example`;',
    '# test/config/env-example.test.ts checks that it lists every option.',
    '#',
    ...Object.values(VALUE_SYNTAX).map((syntax) => `# ${syntax}`),
  ];
  for (const group of optionGroups()) {
    lines.push('', `# ---- ${group.title} ----`);
    for (const key of group.keys) {
      const option = spec(key);
      lines.push('', `# ${option.describe} (--${flagName(option)} ${placeholder(key)})`);
      lines.push(`# ${option.env}=${option.secret ? '' : envValue(option.default)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
