import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  configWith,
  describePorts,
  helpText,
  parseCli,
  readEnvFile,
  redactConfig,
  resolveConfig,
} from '../../src/config/load.js';
import { flagName, type OptionSpec } from '../../src/config/option.js';
import { URL_ALPHABET } from '../../src/config/options/noray.js';
import { OPTIONS, type Config, type ConfigKey } from '../../src/config/schema.js';

const KEYS = Object.keys(OPTIONS) as ConfigKey[];

function spec(key: ConfigKey): OptionSpec<unknown> {
  return OPTIONS[key] as OptionSpec<unknown>;
}

function keyOfEnv(env: string): ConfigKey | undefined {
  return KEYS.find((key) => spec(key).env === env);
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** Every variable of upstream noray, with the value its defaults parse to. */
const UPSTREAM: Array<[env: string, parsed: unknown, other: string, otherParsed: unknown]> = [
  ['NORAY_OID_LENGTH', 21, '10', 10],
  ['NORAY_OID_CHARSET', URL_ALPHABET, 'abc', 'abc'],
  ['NORAY_PID_LENGTH', 128, '64', 64],
  ['NORAY_PID_CHARSET', URL_ALPHABET, '0123456789', '0123456789'],
  ['NORAY_SOCKET_HOST', '0.0.0.0', '127.0.0.1', '127.0.0.1'],
  ['NORAY_SOCKET_PORT', 8890, '9000', 9000],
  ['NORAY_HTTP_HOST', '0.0.0.0', '::1', '::1'],
  ['NORAY_HTTP_PORT', 8891, 'off', null],
  ['NORAY_UDP_REGISTRAR_PORT', 8809, '0', 0],
  ['NORAY_UDP_RELAY_PORTS', Array.from({ length: 2049 }, (_, i) => 49152 + i), '2048+3', [2048, 2049, 2050, 2051]],
  ['NORAY_UDP_RELAY_TIMEOUT', 30_000, '1m', 60_000],
  ['NORAY_UDP_RELAY_CLEANUP_INTERVAL', 30_000, '500ms', 500],
  ['NORAY_UDP_RELAY_MAX_INDIVIDUAL_TRAFFIC', 131_072, '1mb', 1_048_576],
  ['NORAY_UDP_RELAY_MAX_GLOBAL_TRAFFIC', 1_073_741_824, '2Gb', 2_147_483_648],
  ['NORAY_UDP_RELAY_TRAFFIC_INTERVAL', 100, '1s', 1000],
  ['NORAY_UDP_RELAY_MAX_LIFETIME_DURATION', 14_400_000, '1d', 86_400_000],
  ['NORAY_UDP_RELAY_MAX_LIFETIME_TRAFFIC', 4_294_967_296, '100mb', 104_857_600],
  ['NORAY_LOGLEVEL', 'info', 'debug', 'debug'],
];

describe('resolveConfig', () => {
  it('gives every key its default when nothing is set', () => {
    const { config, sources } = resolveConfig({});
    for (const key of KEYS) {
      expect(sources[key]).toBe('default');
      expect(config[key]).toEqual(spec(key).parse(spec(key).default));
    }
  });

  it.each(UPSTREAM)('knows upstream noray variable %s with its default', (env, parsed, other, otherParsed) => {
    const key = keyOfEnv(env);
    expect(key, `${env} is a key`).toBeDefined();
    const k = key as ConfigKey;
    expect(resolveConfig({}).config[k]).toEqual(parsed);
    const loaded = resolveConfig({ env: { [env]: other } });
    expect(loaded.config[k]).toEqual(otherParsed);
    expect(loaded.sources[k]).toBe('env');
  });

  it('env names are unique and all start with NORAY_', () => {
    const envs = KEYS.map((key) => spec(key).env);
    expect(new Set(envs).size).toBe(envs.length);
    for (const env of envs) expect(env).toMatch(/^NORAY_[A-Z0-9_]+$/);
    const flags = KEYS.map((key) => flagName(spec(key)));
    expect(new Set(flags).size).toBe(flags.length);
  });

  it('every default parses (the defaults are written as a user would type them)', () => {
    for (const key of KEYS) expect(() => spec(key).parse(spec(key).default), key).not.toThrow();
  });

  describe('precedence: flag > env > .env > default', () => {
    const all = {
      flags: { socketPort: '1001' },
      env: { NORAY_SOCKET_PORT: '1002' },
      envFile: { NORAY_SOCKET_PORT: '1003' },
    };

    it('a flag beats everything', () => {
      const { config, sources } = resolveConfig(all);
      expect(config.socketPort).toBe(1001);
      expect(sources.socketPort).toBe('flag');
    });

    it('the environment beats the .env file and the default', () => {
      const { config, sources } = resolveConfig({ env: all.env, envFile: all.envFile });
      expect(config.socketPort).toBe(1002);
      expect(sources.socketPort).toBe('env');
    });

    it('the .env file beats the default', () => {
      const { config, sources } = resolveConfig({ envFile: all.envFile });
      expect(config.socketPort).toBe(1003);
      expect(sources.socketPort).toBe('.env');
    });

    it('each key is resolved on its own', () => {
      const { config, sources } = resolveConfig({
        flags: { socketPort: '1001' },
        env: { NORAY_HTTP_PORT: '1002', NORAY_LOGLEVEL: 'warn' },
        envFile: { NORAY_UDP_REGISTRAR_PORT: '1003', NORAY_LOGLEVEL: 'error' },
      });
      expect(config).toMatchObject({ socketPort: 1001, httpPort: 1002, udpRegistrarPort: 1003, logLevel: 'warn' });
      expect(sources).toMatchObject({
        socketPort: 'flag',
        httpPort: 'env',
        udpRegistrarPort: '.env',
        logLevel: 'env',
        oidLength: 'default',
      });
    });

    it('a bad value that is overridden does not matter; the one in use does', () => {
      expect(resolveConfig({ flags: { socketPort: '1' }, env: { NORAY_SOCKET_PORT: 'abc' } }).config.socketPort).toBe(1);
      configError(() => resolveConfig({ flags: { socketPort: 'abc' }, env: { NORAY_SOCKET_PORT: '1' } }));
    });

    it('ignores unrelated and undefined environment entries', () => {
      const { sources } = resolveConfig({ env: { PATH: '/bin', NORAY_SOCKET_PORT: undefined, NORAY_NOPE: '1' } });
      expect(sources.socketPort).toBe('default');
    });
  });

  it.each([
    ['NORAY_SOCKET_PORT', 'abc'],
    ['NORAY_SOCKET_PORT', '70000'],
    ['NORAY_HTTP_PORT', '-1'],
    ['NORAY_UDP_REGISTRAR_PORT', '8809x'],
    ['NORAY_UDP_RELAY_PORTS', '51200-49152'],
    ['NORAY_UDP_RELAY_PORTS', '1,,2'],
    ['NORAY_UDP_RELAY_TIMEOUT', '30 parsecs'],
    ['NORAY_UDP_RELAY_MAX_INDIVIDUAL_TRAFFIC', '128kib'],
    ['NORAY_OID_LENGTH', '3'],
    ['NORAY_PID_LENGTH', 'many'],
    ['NORAY_OID_CHARSET', 'a'],
    ['NORAY_LOGLEVEL', 'verbose'],
    ['NORAY_SOCKET_HOST', 'two words'],
  ])('%s=%j is a ConfigError naming the key and the value', (env, value) => {
    for (const inputs of [{ env: { [env]: value } }, { envFile: { [env]: value } }]) {
      const error = configError(() => resolveConfig(inputs));
      expect(error.message).toContain(env);
      expect(error.message).toContain(JSON.stringify(value));
    }
  });

  it('a bad flag value names the env key, the flag and where it came from', () => {
    const error = configError(() => resolveConfig({ flags: { socketPort: 'abc' } }));
    expect(error.message).toMatch(/"abc".*NORAY_SOCKET_PORT.*--socket-port.*flag/);
    expect(configError(() => resolveConfig({ envFile: { NORAY_SOCKET_PORT: 'abc' } })).message).toContain('.env');
  });
});

describe('configWith', () => {
  it('is the defaults with some keys replaced', () => {
    const config = configWith({ socketPort: 0, udpRelayPorts: null });
    expect(config.socketPort).toBe(0);
    expect(config.udpRelayPorts).toBeNull();
    expect(config.httpPort).toBe(8891);
    expect(config.oidLength).toBe(21);
  });
});

describe('parseCli', () => {
  it('reads nothing from no arguments', () => {
    expect(parseCli([])).toEqual({ help: false, version: false, envFile: undefined, flags: {} });
  });

  it('maps each option flag to its key, both --flag value and --flag=value', () => {
    expect(parseCli(['--socket-port', '9000']).flags).toEqual({ socketPort: '9000' });
    expect(parseCli(['--socket-port=9000']).flags).toEqual({ socketPort: '9000' });
    expect(parseCli(['--udp-relay-ports', '2048+3', '--loglevel', 'debug']).flags).toEqual({
      udpRelayPorts: '2048+3',
      logLevel: 'debug',
    });
  });

  it('has a flag for every key, named after its env variable', () => {
    for (const key of KEYS) {
      const flag = flagName(spec(key));
      expect(flag).toBe(spec(key).env.replace(/^NORAY_/, '').toLowerCase().replace(/_/g, '-'));
      expect(parseCli([`--${flag}`, 'x']).flags[key]).toBe('x');
    }
  });

  it('reads --help/-h, --version/-v and --dotenv', () => {
    expect(parseCli(['--help']).help).toBe(true);
    expect(parseCli(['-h']).help).toBe(true);
    expect(parseCli(['--version']).version).toBe(true);
    expect(parseCli(['-v']).version).toBe(true);
    expect(parseCli(['--dotenv', 'prod.env']).envFile).toBe('prod.env');
  });

  it('flags feed resolveConfig', () => {
    const { config, sources } = resolveConfig({ flags: parseCli(['--http-port', 'off']).flags });
    expect(config.httpPort).toBeNull();
    expect(sources.httpPort).toBe('flag');
  });

  it.each([[['--nope', '1']], [['--socket-prot', '1']], [['positional']], [['--socket-port']], [['-x']], [['--help=yes']]])(
    '%j is a ConfigError',
    (argv) => {
      const error = configError(() => parseCli(argv));
      expect(error.message).toContain('--help');
    },
  );

  it('names the unknown flag', () => {
    expect(configError(() => parseCli(['--nope', '1'])).message).toContain('--nope');
  });

  describe("Orion's flag names as aliases", () => {
    it.each([
      ['--httpPort', 'lobbyHttpPort', '5981'],
      ['--udpPort', 'lobbyUdpPort', '5991'],
    ] as const)('%s sets %s', (flag, key, value) => {
      expect(parseCli([flag, value]).flags[key]).toBe(value);
    });

    it('--ptpm*Ms take bare milliseconds, as in Orion', () => {
      const { flags } = parseCli([
        '--ptpmConnectTimeoutMs',
        '30000',
        '--ptpmServerConnectTimeoutMs=120000',
        '--ptpmConnectRequestIntervalMs',
        '2500',
      ]);
      const { config, sources } = resolveConfig({ flags });
      expect(config.lobbyConnectTimeout).toBe(30_000);
      expect(config.lobbyServerConnectTimeout).toBe(120_000);
      expect(config.lobbyConnectRequestInterval).toBe(2500);
      expect(sources.lobbyConnectTimeout).toBe('flag');
    });

    it('--ptpm*Ms still take a value with a unit', () => {
      const { config } = resolveConfig({ flags: parseCli(['--ptpmConnectTimeoutMs', '2m']).flags });
      expect(config.lobbyConnectTimeout).toBe(120_000);
    });

    it('the own flag name keeps bare numbers as seconds', () => {
      const { config } = resolveConfig({ flags: parseCli(['--lobby-connect-timeout', '30']).flags });
      expect(config.lobbyConnectTimeout).toBe(30_000);
    });

    it('--http-port is the ops server, --httpPort the lobby (Orion)', () => {
      expect(parseCli(['--http-port', '1', '--httpPort', '2']).flags).toEqual({ httpPort: '1', lobbyHttpPort: '2' });
    });

    it('a bad alias value is reported under the key', () => {
      const error = configError(() => resolveConfig({ flags: parseCli(['--udpPort', 'x']).flags }));
      expect(error.message).toContain('NORAY_LOBBY_UDP_PORT');
    });
  });
});

describe('readEnvFile', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'noray-env-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads ./.env from the given directory', () => {
    writeFileSync(
      join(dir, '.env'),
      [
        '# a comment',
        'NORAY_SOCKET_PORT=1234',
        'NORAY_UDP_RELAY_PORTS="2048+3"',
        "NORAY_LOGLEVEL='warn'",
        '',
        'export NORAY_HTTP_PORT=off',
      ].join('\n'),
    );
    const envFile = readEnvFile(undefined, dir);
    expect(envFile).toMatchObject({
      NORAY_SOCKET_PORT: '1234',
      NORAY_UDP_RELAY_PORTS: '2048+3',
      NORAY_LOGLEVEL: 'warn',
    });
    const { config, sources } = resolveConfig({ envFile });
    expect(config.socketPort).toBe(1234);
    expect(config.udpRelayPorts).toEqual([2048, 2049, 2050, 2051]);
    expect(config.logLevel).toBe('warn');
    expect(sources.socketPort).toBe('.env');
  });

  it('a missing default .env is no error', () => {
    expect(readEnvFile(undefined, dir)).toEqual({});
  });

  it('reads a named file, relative to the directory or absolute', () => {
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf', 'prod.env'), 'NORAY_SOCKET_PORT=4321\n');
    expect(readEnvFile('conf/prod.env', dir)).toEqual({ NORAY_SOCKET_PORT: '4321' });
    expect(readEnvFile(join(dir, 'conf', 'prod.env'), '/')).toEqual({ NORAY_SOCKET_PORT: '4321' });
  });

  it('a named file that does not exist is a ConfigError naming it', () => {
    expect(configError(() => readEnvFile('missing.env', dir)).message).toContain(join(dir, 'missing.env'));
  });

  it('a named path that cannot be read (a directory) is a ConfigError, not a crash', () => {
    mkdirSync(join(dir, 'adir'));
    expect(configError(() => readEnvFile('adir', dir)).message).toContain('adir');
  });
});

describe('helpText', () => {
  const help = helpText();

  it("lists every option's flag, env name and default", () => {
    for (const key of KEYS) {
      const option = spec(key);
      expect(help, key).toContain(`--${flagName(option)}`);
      expect(help, key).toContain(`env ${option.env}, default ${JSON.stringify(option.default)}`);
      expect(help, key).toContain(option.describe);
      for (const alias of option.aliases ?? []) expect(help, key).toContain(`--${alias}`);
    }
  });

  it('lists --help, --version and --dotenv and the precedence', () => {
    expect(help).toMatch(/--help/);
    expect(help).toMatch(/--version/);
    expect(help).toMatch(/--dotenv/);
    expect(help).toMatch(/flag > environment > \.env file > default/);
  });
});

describe('redactConfig and describePorts', () => {
  it('shows every key, long port lists shortened', () => {
    const config: Config = configWith({});
    const shown = redactConfig(config);
    expect(Object.keys(shown).sort()).toEqual([...KEYS].sort());
    expect(shown.udpRelayPorts).toBe('2049 ports 49152..51200');
    expect(shown.socketPort).toBe(8890);
    expect(shown.oidCharset).toBe(URL_ALPHABET);
    expect(JSON.parse(JSON.stringify(shown))).toEqual(shown);
  });

  it('keeps short lists and off values as they are', () => {
    const shown = redactConfig(configWith({ udpRelayPorts: [2048, 2049], httpPort: null }));
    expect(shown.udpRelayPorts).toEqual([2048, 2049]);
    expect(shown.httpPort).toBeNull();
  });

  it('redacts the options marked secret', () => {
    const shown = redactConfig(configWith({}));
    for (const key of KEYS) if (spec(key).secret) expect(shown[key]).toBe('<redacted>');
  });

  it('describePorts: up to 8 ports as a list, more as a count and range', () => {
    expect(describePorts([])).toEqual([]);
    expect(describePorts([1, 2, 3, 4, 5, 6, 7, 8])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(describePorts([1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe('9 ports 1..9');
    expect(describePorts([30, 10, 20, 40, 50, 60, 70, 80, 90])).toBe('9 ports 10..90');
  });

  it('describePorts does not change its input', () => {
    const ports = [3, 1, 2];
    const shown = describePorts(ports);
    expect(shown).toEqual([3, 1, 2]);
    expect(shown).not.toBe(ports);
  });
});
