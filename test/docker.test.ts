// The Docker files against the code they package: no Docker engine runs here, so this checks
// what can be checked without one. The Dockerfile is parsed with dockerfile-ast, the compose file
// with yaml; ports, env names and the bin come from the option table and package.json, so a new
// port option, a renamed variable or a moved bin fails here instead of in someone's deployment.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { OPTIONS, type ConfigKey } from '../src/config/schema.js';
import { parseOptionalPort, parseOptionalPortList, parsePortList } from '../src/config/units.js';
import { suggestedOpenFileLimit } from '../src/core/open-files.js';
import { port, startApp } from './helpers/app.js';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const dockerfile = DockerfileParser.parse(read('Dockerfile'));
const instructions = dockerfile.getInstructions();
const froms = dockerfile.getFROMs();
const lastFrom = froms.at(-1);
/** Instructions of the runtime (last) stage. */
const runtime = instructions.filter((i) => lastFrom !== undefined && i.getRange().start.line > lastFrom.getRange().start.line);
const keyword = (list: Instruction[], name: string): Instruction[] => list.filter((i) => i.getKeyword() === name);

/** Protocol of every port option; a port option missing here fails the test that reads it. */
const PROTOCOL: Partial<Record<ConfigKey, 'tcp' | 'udp'>> = {
  socketPort: 'tcp',
  udpRegistrarPort: 'udp',
  stunAltPort: 'udp',
  udpRelayPorts: 'udp',
  lobbyHttpPort: 'tcp',
  lobbyUdpPort: 'udp',
  wsrelayPort: 'tcp',
  tcprelayPort: 'tcp',
  httpPort: 'tcp',
};

/** Every default port of the config as `PORT/PROTO`, each parsed by its own option's parser. */
function defaultPorts(): Set<string> {
  const ports = new Set<string>();
  for (const [key, spec] of Object.entries(OPTIONS) as [ConfigKey, (typeof OPTIONS)[ConfigKey]][]) {
    const parse: unknown = spec.parse;
    if (parse !== parseOptionalPort && parse !== parseOptionalPortList) continue;
    const protocol = PROTOCOL[key];
    if (protocol === undefined) throw new Error(`port option ${key} (${spec.env}) has no protocol in this test`);
    const value: unknown = spec.parse(spec.default);
    const list = typeof value === 'number' ? [value] : Array.isArray(value) ? (value as number[]) : [];
    for (const p of list) ports.add(`${p}/${protocol}`);
  }
  return ports;
}

/** EXPOSE arguments (`8890/tcp`, `49152-51200/udp`; no protocol means tcp) as `PORT/PROTO`. */
function exposedPorts(): Set<string> {
  const ports = new Set<string>();
  for (const expose of keyword(runtime, 'EXPOSE')) {
    for (const arg of expose.getArguments()) {
      const [range = '', protocol = 'tcp'] = arg.getValue().split('/');
      for (const p of parsePortList(range)) ports.add(`${p}/${protocol}`);
    }
  }
  return ports;
}

function jsonForm(text: string | null): string[] {
  const value: unknown = JSON.parse(text ?? 'null');
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new Error(`not an exec form: ${text}`);
  return value as string[];
}

/** The HEALTHCHECK's command, in exec form. */
function healthcheckCommand(): string[] {
  const [healthcheck, ...more] = dockerfile.getHEALTHCHECKs();
  expect(healthcheck).toBeDefined();
  expect(more).toEqual([]);
  const content = healthcheck?.getArgumentsContent() ?? '';
  const cmd = /(?:^|\s)CMD\s+(\[[\s\S]*\])\s*$/.exec(content);
  return jsonForm(cmd?.[1] ?? null);
}

describe('Dockerfile', () => {
  it('builds in one node:20-slim stage and runs in another', () => {
    expect(froms.map((from) => from.getImage())).toEqual(['node:20-slim', 'node:20-slim']);
    const runs = (list: Instruction[]) => keyword(list, 'RUN').map((run) => run.getArgumentsContent() ?? '');
    const build = instructions.filter((i) => !runtime.includes(i));
    expect(runs(build).some((run) => /\bnpm ci\b/.test(run))).toBe(true);
    expect(runs(build).some((run) => /\bnpm run build\b/.test(run))).toBe(true);
    expect(runs(runtime).some((run) => /\bnpm ci\b.*--omit=dev/.test(run))).toBe(true);
    expect(runs(runtime).some((run) => /npm run build|\btsc\b/.test(run))).toBe(false);
    const copies = keyword(runtime, 'COPY').map((copy) => copy.getTextContent());
    expect(copies.some((copy) => /--from=build\s+\/app\/dist\b/.test(copy))).toBe(true);
    expect(keyword(runtime, 'ENV').map((env) => env.getArgumentsContent())).toContain('NODE_ENV=production');
  });

  it('runs as a user that is not root', () => {
    const users = keyword(runtime, 'USER').map((user) => user.getArgumentsContent() ?? '');
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1) ?? '';
    expect(last.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(last).toBe('node');
  });

  it('starts the bin of package.json directly, no npm or shell in between', () => {
    const cmds = dockerfile.getCMDs();
    expect(cmds).toHaveLength(1);
    const cmd = jsonForm(cmds[0]?.getArgumentsContent() ?? null);
    const pkg = JSON.parse(read('package.json')) as { bin: { noray: string } };
    expect(cmd).toEqual(['node', pkg.bin.noray]);
    expect(cmd[1]).toBe('dist/bin/noray.js');
    expect(dockerfile.getENTRYPOINTs()).toEqual([]);
  });

  it('exposes exactly the default ports of the config', () => {
    const defaults = defaultPorts();
    expect(defaults.size).toBeGreaterThan(2049);
    const exposed = exposedPorts();
    expect([...exposed].filter((p) => !defaults.has(p))).toEqual([]);
    expect([...defaults].filter((p) => !exposed.has(p))).toEqual([]);
  });

  it('checks /health on the default ops port with node itself', () => {
    const command = healthcheckCommand();
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const url = new URL(/fetch\('([^']+)'\)/.exec(command[2] ?? '')?.[1] ?? 'invalid:');
    expect(url.pathname).toBe('/health');
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBe(OPTIONS.httpPort.parse(OPTIONS.httpPort.default));
  });

  it("the health check's script passes against a real ops server and fails without one", async () => {
    const script = healthcheckCommand()[2] ?? '';
    const app = await startApp({ httpPort: 0, opsToken: 'a-token-of-16-chars-or-more' });
    const run = promisify(execFile);
    const at = (p: number) => script.replace(':8891/', `:${p}/`);
    await expect(run(process.execPath, ['-e', at(port(app, 'ops', 'http'))])).resolves.toBeDefined();
    await app.stop();
    await expect(run(process.execPath, ['-e', at(port(app, 'ops', 'http'))])).rejects.toMatchObject({ code: 1 });
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, dist and local secrets out of the build context', () => {
    const lines = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    for (const excluded of ['node_modules', 'dist', '.git', 'bench/results', '.env']) expect(lines).toContain(excluded);
  });
});

describe('docker-compose.yml', () => {
  interface Service {
    image?: string;
    network_mode?: string;
    environment?: Record<string, string> | string[];
    ulimits?: { nofile?: { soft: number; hard: number } };
  }
  const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, Service> };
  const envNames = new Set(Object.values(OPTIONS).map((spec) => spec.env));

  it('runs noray on the host network beside a redis:7', () => {
    expect(compose.services.noray?.network_mode).toBe('host');
    expect(compose.services.redis?.image).toBe('redis:7');
  });

  it('uses only NORAY_* names the config knows, in the environment and in the comments', () => {
    const text = read('docker-compose.yml');
    const used = new Set(text.match(/\bNORAY_[A-Z0-9_]+/g) ?? []);
    expect([...used].filter((name) => !envNames.has(name))).toEqual([]);
    const environment = compose.services.noray?.environment ?? {};
    const names = Array.isArray(environment) ? environment.map((entry) => entry.split('=')[0] ?? '') : Object.keys(environment);
    expect(names.filter((name) => !envNames.has(name))).toEqual([]);
    for (const name of ['NORAY_REDIS_URL', 'NORAY_NODE_ID', 'NORAY_OPS_TOKEN', 'NORAY_HTTP_HOST']) expect(names).toContain(name);
    const env = Array.isArray(environment) ? {} : environment;
    expect(env.NORAY_HTTP_HOST).toBe('127.0.0.1');
    expect(env.NORAY_OPS_TOKEN).toMatch(/^\$\{NORAY_OPS_TOKEN:\?/);
    // The commented alternative's relay range parses as the option would parse it.
    const range = /NORAY_UDP_RELAY_PORTS:\s*(\S+)/.exec(text)?.[1] ?? '';
    expect(OPTIONS.udpRelayPorts.parse(range)).toHaveLength(100);
  });

  it('raises the open-file limit enough for every default relay port', () => {
    const relayPorts = OPTIONS.udpRelayPorts.parse(OPTIONS.udpRelayPorts.default)?.length ?? 0;
    expect(compose.services.noray?.ulimits?.nofile?.soft).toBeGreaterThanOrEqual(suggestedOpenFileLimit(relayPorts));
  });
});

describe('docs/deploy.md', () => {
  const guide = read('docs/deploy.md');

  it('names only options and metrics that exist', () => {
    const envNames = new Set(Object.values(OPTIONS).map((spec) => spec.env));
    const used = new Set(guide.match(/\bNORAY_[A-Z0-9_]+/g) ?? []);
    // A name ending in _ is a family (NORAY_SOURCE_*).
    expect([...used].filter((name) => !envNames.has(name) && !name.endsWith('_'))).toEqual([]);
    const sources = (readdirSync(new URL('../src', import.meta.url), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts'))
      .map((file) => read(`src/${file}`))
      .join('\n');
    const metrics = new Set(guide.match(/\bnoray_[a-z_]+[a-z]/g) ?? []);
    expect(metrics.size).toBeGreaterThan(2);
    expect([...metrics].filter((name) => !sources.includes(`'${name}'`))).toEqual([]);
  });

  it("sets the systemd unit's LimitNOFILE high enough for every default relay port", () => {
    const relayPorts = OPTIONS.udpRelayPorts.parse(OPTIONS.udpRelayPorts.default)?.length ?? 0;
    const limit = Number(/^LimitNOFILE=(\d+)$/m.exec(guide)?.[1]);
    expect(limit).toBeGreaterThanOrEqual(suggestedOpenFileLimit(relayPorts));
    expect(guide).toMatch(/^KillSignal=SIGTERM$/m);
    expect(guide).toMatch(/^ExecStart=\S*noray\b/m);
  });
});
