// .env.example is made from the option table; this keeps it complete as options are added.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { envExample, envValue, optionGroups } from '../../src/config/help.js';
import { resolveConfig } from '../../src/config/load.js';
import { flagName, type OptionSpec } from '../../src/config/option.js';
import { OPTIONS, type ConfigKey } from '../../src/config/schema.js';

const FILE = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const REGENERATE = 'run `npm run env-example` to regenerate .env.example from the option table';
const KEYS = Object.keys(OPTIONS) as ConfigKey[];
const spec = (key: ConfigKey) => OPTIONS[key] as OptionSpec<unknown>;

/** The commented-out assignments, uncommented: what a user gets by removing every leading `# `. */
function assignments(text: string): Record<string, string> {
  const lines = text.split('\n').filter((line) => /^# NORAY_[A-Z_]+=/.test(line));
  return parseEnv(lines.map((line) => line.slice(2)).join('\n')) as Record<string, string>;
}

describe('.env.example', () => {
  it('lists every option with its default', () => {
    const listed = assignments(FILE);
    for (const key of KEYS) {
      const option = spec(key);
      expect(FILE, `${option.env} is missing: ${REGENERATE}`).toContain(`\n# ${option.env}=`);
      expect(listed[option.env], `${option.env} has a stale default: ${REGENERATE}`).toBe(option.default);
    }
  });

  it('lists nothing that is not an option', () => {
    const known = new Set(KEYS.map((key) => spec(key).env));
    const unknown = Object.keys(assignments(FILE)).filter((env) => !known.has(env));
    expect(unknown, REGENERATE).toEqual([]);
  });

  it('names each option\'s flag beside its description', () => {
    for (const key of KEYS) expect(FILE).toContain(`(--${flagName(spec(key))} `);
  });

  it('uncommented as a whole, it is a valid .env that changes nothing', () => {
    const { config, sources } = resolveConfig({ envFile: assignments(FILE) });
    expect(config).toEqual(resolveConfig({}).config);
    expect(new Set(Object.values(sources))).toEqual(new Set(['.env']));
  });

  it('is what the generator writes', () => {
    expect(FILE, REGENERATE).toBe(envExample());
  });
});

describe('option groups', () => {
  it('hold every option exactly once, by front', () => {
    const grouped = optionGroups().flatMap((group) => group.keys);
    expect([...grouped].sort()).toEqual([...KEYS].sort());
    const titles = optionGroups().map((group) => group.title.split(':')[0]);
    expect(titles).toEqual([
      'General and the operations server (/health, /metrics)',
      'noray front',
      'lobby front',
      'wsrelay front',
      'tcprelay front',
      'Limits, shared by every front',
    ]);
  });

  it('put each front\'s options under its heading', () => {
    const groupOf = (key: ConfigKey) => optionGroups().find((group) => group.keys.includes(key))?.title ?? '';
    expect(groupOf('socketPort')).toMatch(/^noray front/);
    expect(groupOf('udpRelayPorts')).toMatch(/^noray front/);
    expect(groupOf('lobbyHttpPort')).toMatch(/^lobby front/);
    expect(groupOf('wsrelayMaxMessageSize')).toMatch(/^wsrelay front/);
    expect(groupOf('tcprelaySendBuffer')).toMatch(/^tcprelay front/);
    expect(groupOf('maxConnections')).toMatch(/^Limits/);
    expect(groupOf('httpPort')).toMatch(/^General/);
  });
});

describe('envValue', () => {
  it('quotes what a dotenv parser could misread', () => {
    for (const value of ['a b', 'x#y', '"q"', "it's", '']) {
      expect(parseEnv(`K=${envValue(value)}`).K).toBe(value);
    }
    expect(envValue('49152-51200')).toBe('49152-51200');
  });
});
