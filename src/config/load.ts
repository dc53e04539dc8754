import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, parseEnv } from 'node:util';
import { flagName, type OptionSpec } from './option.js';
import { OPTIONS, type Config, type ConfigKey } from './schema.js';
import { ConfigValueError } from './units.js';
import { configProblems } from './validate.js';

export { helpText } from './help.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type ConfigSource = 'default' | '.env' | 'env' | 'flag';

export interface LoadedConfig {
  config: Config;
  /** Where each key's value came from. */
  sources: Record<ConfigKey, ConfigSource>;
}

export interface CliRequest {
  help: boolean;
  version: boolean;
  envFile: string | undefined;
  flags: Partial<Record<ConfigKey, string>>;
}

const KEYS = Object.keys(OPTIONS) as ConfigKey[];

function spec(key: ConfigKey): OptionSpec<unknown> {
  return OPTIONS[key] as OptionSpec<unknown>;
}

/** Parses command-line arguments into raw option texts. Unknown flags are an error. */
export function parseCli(argv: readonly string[]): CliRequest {
  const flagToKey = new Map<string, ConfigKey>();
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
    dotenv: { type: 'string' },
  };
  for (const key of KEYS) {
    for (const flag of [flagName(spec(key)), ...(spec(key).aliases ?? [])]) {
      flagToKey.set(flag, key);
      options[flag] = { type: 'string' };
    }
  }
  const args = joinValues(argv, options);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run with --help to list every option.`);
  }
  const flags: Partial<Record<ConfigKey, string>> = {};
  for (const [flag, value] of Object.entries(values)) {
    const key = flagToKey.get(flag);
    if (key !== undefined && typeof value === 'string') flags[key] = aliasValue(flag, key, value);
  }
  return {
    help: values.help === true,
    version: values.version === true,
    envFile: typeof values.dotenv === 'string' ? values.dotenv : undefined,
    flags,
  };
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * Gives each flag that takes a value its value as `--flag=value`. parseArgs refuses a value
 * that starts with a dash (`--udp-relay-timeout -5` is "ambiguous"), so a negative number gets
 * joined here and then refused by the option's parser with a message that names the option.
 * A flag without a value (last, or followed by another flag) is refused here, by name.
 */
function joinValues(argv: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (name === undefined || options[name]?.type !== 'string') {
      args.push(arg);
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || (value.startsWith('-') && !NEGATIVE_NUMBER.test(value))) {
      const key = KEYS.find((k) => flagName(spec(k)) === name || (spec(k).aliases ?? []).includes(name));
      const example = key === undefined ? 'PATH' : spec(key).default;
      throw new ConfigError(`${arg} needs a value (e.g. ${arg} ${example}). Run with --help to list every option.`);
    }
    args.push(`${arg}=${value}`);
    i++;
  }
  return args;
}

/**
 * Orion's own flags (`--ptpmConnectTimeoutMs 30000`) take bare milliseconds, while a bare
 * duration means seconds in our syntax: give such a value its unit.
 */
function aliasValue(flag: string, key: ConfigKey, value: string): string {
  const isMsAlias = flag.endsWith('Ms') && (spec(key).aliases ?? []).includes(flag);
  return isMsAlias && /^\s*\d+(\.\d+)?\s*$/.test(value) ? `${value.trim()}ms` : value;
}

/** Reads a dotenv file; a missing default `.env` is not an error, a missing named one is. */
export function readEnvFile(path: string | undefined, cwd: string): Record<string, string> {
  const file = resolve(cwd, path ?? '.env');
  if (!existsSync(file)) {
    if (path !== undefined) throw new ConfigError(`env file ${file} does not exist`);
    return {};
  }
  try {
    return parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch (error) {
    // A directory or an unreadable file: a config problem, not a crash with a stack trace.
    throw new ConfigError(`cannot read env file ${file}: ${(error as Error).message}`);
  }
}

export interface ConfigInputs {
  flags?: Partial<Record<ConfigKey, string>>;
  env?: Readonly<Record<string, string | undefined>>;
  envFile?: Readonly<Record<string, string>>;
}

/** Resolves every key: flag > environment > .env file > default, and parses it. */
export function resolveConfig(inputs: ConfigInputs): LoadedConfig {
  const config: Record<string, unknown> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const key of KEYS) {
    const option = spec(key);
    const candidates: Array<[ConfigSource, string | undefined]> = [
      ['flag', inputs.flags?.[key]],
      ['env', inputs.env?.[option.env]],
      ['.env', inputs.envFile?.[option.env]],
      ['default', option.default],
    ];
    const [source, raw] = candidates.find(([, value]) => value !== undefined) as [ConfigSource, string];
    try {
      config[key] = option.parse(raw);
    } catch (error) {
      if (!(error instanceof ConfigValueError)) throw error;
      const shown = option.secret ? '<redacted>' : JSON.stringify(raw);
      throw new ConfigError(
        `invalid value ${shown} for ${option.env} (--${flagName(option)}, from ${source}): ${error.message}`,
      );
    }
    sources[key] = source;
  }
  const problems = configProblems(config as Config);
  if (problems.length > 0) throw new ConfigError(problems.join('; '));
  return { config: config as Config, sources };
}

/** Builds a config from defaults with some keys replaced; for tests and embedding. */
export function configWith(overrides: Partial<Config>): Config {
  return { ...resolveConfig({}).config, ...overrides };
}

/** The config as it may be logged: secrets replaced. */
export function redactConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const key of KEYS) {
    const value = config[key];
    shown[key] = spec(key).secret ? '<redacted>' : Array.isArray(value) ? describePorts(value as number[]) : value;
  }
  return shown;
}

/** A port list short enough for a log line: `2049 ports 49152..51200` when long. */
export function describePorts(ports: readonly number[]): number[] | string {
  if (ports.length <= 8) return [...ports];
  const sorted = [...ports].sort((a, b) => a - b);
  return `${ports.length} ports ${sorted[0]}..${sorted[sorted.length - 1]}`;
}
