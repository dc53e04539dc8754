// The NAT lab: network namespaces with real Linux NAT between game players and the noray server.
//
//   public namespace ("the internet"): bridge br0, server 203.0.113.1, every router's WAN port,
//   and one machine with no NAT at all
//        |
//   router namespaces: WAN 203.0.113.x on br0, LAN 10.N.0.1/24 (or 192.168.N.1/24), iptables NAT
//        |
//   home LAN namespaces: machines .2 (and .3) behind the router, each an address the agent binds
//
// Only addresses inside these namespaces (and loopback) are ever sent to. Every name starts with
// nl<pid>- so runs never collide and a later run can clean up after a killed one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Command, ReplyLine, Requests } from './protocol.js';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const AGENT = join(ROOT, 'test', 'natlab', 'agent.ts');

export const SERVER_IP = '203.0.113.1';
export const CONTROL_PORT = 8890;
export const REGISTRAR_PORT = 8809;
export const HTTP_PORT = 8891;
export const RELAY_PORTS = '49152-49279';
export const STUN_ALT_PORT = 3478;
const PREFIX = 'nl';

export type Profile = 'easy' | 'restricted' | 'fullcone' | 'symmetric' | 'none';

export interface RouterSpec {
  /** Short name, unique in the lab (also the namespace suffix). */
  readonly name: string;
  readonly profile: Exclude<Profile, 'none'>;
  readonly wan: string;
  /** LAN prefix without the last octet: router .1, machines .2, .3, ... */
  readonly lan: string;
  readonly machines: number;
  /** UDP destination ports (iptables `A:B`) the router's firewall drops on the way out: a firewall in the way. */
  readonly blockUdpPorts?: string;
}

/** Machine with its own public address on the bridge: no NAT, no firewall. */
export interface OpenSpec {
  readonly name: string;
  readonly address: string;
}

// ---------------------------------------------------------------------------------------------
// Commands

export class CommandError extends Error {}

/** Runs a command, resolves with stdout; rejects with stderr on a non-zero exit. */
export function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolveRun(stdout);
      else reject(new CommandError(`${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
    child.stdin.on('error', () => undefined); // EPIPE from a command that exits before reading: its exit code tells
    child.stdin.end(input ?? '');
  });
}

/** Runs a command to its end whatever its exit code: the code and what it printed. */
export function runStatus(command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

function runSync(command: string, args: readonly string[]): { ok: boolean; out: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  const missing = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  const error = result.error ? (missing ? 'not found' : String(result.error)) : '';
  return { ok: result.status === 0, out: `${result.stdout ?? ''}${result.stderr ?? ''}${error}`.trim() };
}

// ---------------------------------------------------------------------------------------------
// Capability and stale namespaces

export type Capability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Whether this machine can build the lab: root, ip, iptables with NAT inside a namespace, conntrack. */
export function probeCapability(): Capability {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: network namespaces and iptables need root' };
  for (const [tool, args] of [
    ['ip', ['-V']],
    ['iptables', ['--version']],
    ['iptables-restore', ['--version']],
    ['conntrack', ['--version']],
  ] as const) {
    const probe = runSync(tool, args);
    if (!probe.ok) return { ok: false, reason: `${tool}: ${probe.out || 'does not work'} (install iproute2, iptables and conntrack)` };
  }
  const ns = `${PREFIX}${process.pid}-probe`;
  runSync('ip', ['netns', 'del', ns]);
  try {
    const steps: Array<[string, string[]]> = [
      ['ip', ['netns', 'add', ns]],
      ['ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'MASQUERADE', '--random-fully']],
      ['ip', ['netns', 'exec', ns, 'iptables', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']],
      ['ip', ['netns', 'exec', ns, 'conntrack', '-F']],
    ];
    for (const [command, args] of steps) {
      const step = runSync(command, args);
      if (!step.ok) return { ok: false, reason: `cannot ${command} ${args.join(' ')}: ${step.out}` };
    }
    return { ok: true };
  } finally {
    runSync('ip', ['netns', 'del', ns]);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function namespaces(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Kills what still runs inside a namespace, then deletes it. */
async function destroyNamespace(name: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', name]).catch(() => '');
  for (const pid of pids.split('\n').map(Number).filter((n) => n > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}

/**
 * Namespaces of earlier lab runs whose creating process is gone (a killed run leaves them), and
 * any with our own pid (a dead run's pid reused by us): call before building.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const stale = (await namespaces()).filter((name) => {
    const match = /^nl(\d+)-/.exec(name);
    if (!match) return false;
    const pid = Number(match[1]);
    return pid === process.pid || !isAlive(pid);
  });
  await Promise.all(stale.map(destroyNamespace));
  return stale;
}

// ---------------------------------------------------------------------------------------------
// Build

/** Newest modification time of the files under a directory. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** dist/ as `npm run build` makes it; rebuilt only when missing or older than src/. */
export async function ensureBuilt(): Promise<void> {
  if (existsSync(BIN) && statSync(BIN).mtimeMs >= newest(join(ROOT, 'src'))) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')]).catch((error: unknown) => {
    // A type error still emits JavaScript; only a missing bin is fatal.
    if (!existsSync(BIN)) throw error;
  });
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A child kept alive by its stdin: when the test process dies the pipe closes and it exits. */
class Child {
  readonly process: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.process = spawn('ip', args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.output = (this.output + text).slice(-20_000);
    });
    this.exited = new Promise((resolveExit) => this.process.on('close', (code) => resolveExit(code)));
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.stdin?.end();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('NORAY_')) env[key] = value;
  return { ...env, ...extra };
}

// Runs the server as its child and kills it when stdin closes (Node cannot die with its parent).
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, process.argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
process.stdin.on('end', () => child.kill('SIGTERM'));
process.stdin.resume();
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`;

export class Server {
  private readonly child: Child;
  logs = '';

  constructor(namespace: string, env: Record<string, string>) {
    this.child = new Child(['netns', 'exec', namespace, process.execPath, '-e', SUPERVISOR, BIN], cleanEnv(env));
    this.child.process.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.logs = (this.logs + text).slice(-200_000);
    });
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.logs.includes('"noray ready"')) {
      if (this.child.process.exitCode !== null) throw new Error(`server exited: ${this.child.output}${this.logs}`);
      if (Date.now() > deadline) throw new Error(`server not ready: ${this.child.output}${this.logs}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

/** One lab machine's agent: typed requests over its stdin/stdout. */
export class Agent {
  private readonly child: Child;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly started: Promise<void>;

  constructor(
    readonly namespace: string,
    /** The machine's addresses (the first is the default one). */
    readonly addresses: readonly string[],
  ) {
    this.child = new Child(['netns', 'exec', namespace, process.execPath, '--import', 'tsx', AGENT], cleanEnv());
    let ready: () => void = () => undefined;
    this.started = new Promise((resolveStart) => (ready = resolveStart));
    const out = this.child.process.stdout;
    if (!out) throw new Error('agent without stdout');
    createInterface({ input: out }).on('line', (text) => {
      let line: ReplyLine;
      try {
        line = JSON.parse(text) as ReplyLine;
      } catch {
        return;
      }
      if (line.id === 0) return ready();
      const waiter = this.pending.get(line.id);
      if (!waiter) return;
      this.pending.delete(line.id);
      if (line.ok) waiter.resolve(line.result);
      else waiter.reject(new Error(`agent ${this.namespace}: ${line.error}`));
    });
    void this.child.exited.then((code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`agent ${this.namespace} exited ${code}: ${this.child.output}`));
      this.pending.clear();
    });
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`agent ${this.namespace} did not start: ${this.child.output}`)), timeoutMs);
    });
    try {
      await Promise.race([this.started, timeout, this.child.exited.then((code) => Promise.reject(new Error(`agent exited ${code}: ${this.child.output}`)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  call<C extends Command>(cmd: C, req: Requests[C]['req']): Promise<Requests[C]['res']> {
    const id = this.nextId++;
    return new Promise((resolveCall, reject) => {
      this.pending.set(id, { resolve: (value) => resolveCall(value as Requests[C]['res']), reject });
      this.child.process.stdin?.write(`${JSON.stringify({ id, cmd, ...req })}\n`);
    });
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Topology

function rules(router: RouterSpec): string {
  // A home router's firewall: from the WAN only what belongs to a connection the LAN opened.
  // Without the INPUT drop, a peer's early packet would land in the router's own conntrack and
  // make MASQUERADE move the player to another port once it sends.
  const established = router.profile === 'restricted' ? 'ESTABLISHED' : 'ESTABLISHED,RELATED';
  const filter = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...(router.blockUdpPorts === undefined ? [] : [`-A FORWARD -i lan -p udp --dport ${router.blockUdpPorts} -j DROP`]),
    `-A INPUT -i wan -m conntrack --ctstate ${established} -j ACCEPT`,
    '-A INPUT -i wan -j DROP',
    router.profile === 'fullcone'
      ? '-A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT'
      : `-A FORWARD -i wan -m conntrack --ctstate ${established} -j ACCEPT`,
    '-A FORWARD -i wan -j DROP',
    'COMMIT',
  ];
  const nat = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]'];
  switch (router.profile) {
    case 'easy':
      // Port-preserving, endpoint-independent mapping; address+port-dependent filtering.
      nat.push('-A POSTROUTING -o wan -j MASQUERADE');
      break;
    case 'restricted':
      // Endpoint-independent mapping to another port than the player's (a port range the local
      // ports are outside of), filtering of everything unsolicited (not even RELATED).
      nat.push('-A POSTROUTING -o wan -p udp -j MASQUERADE --to-ports 20000-29999', '-A POSTROUTING -o wan -j MASQUERADE');
      break;
    case 'fullcone':
      // Every UDP port of the WAN address leads to the one machine; outgoing keeps its port.
      nat.push(`-A PREROUTING -i wan -p udp -j DNAT --to-destination ${router.lan}.2`, '-A POSTROUTING -o wan -j MASQUERADE');
      break;
    case 'symmetric':
      // A new random external port for every destination.
      nat.push('-A POSTROUTING -o wan -j MASQUERADE --random-fully');
      break;
  }
  nat.push('COMMIT');
  return `${[...nat, ...filter].join('\n')}\n`;
}

export class Lab {
  readonly prefix = `${PREFIX}${process.pid}-`;
  readonly pub = `${this.prefix}pub`;
  private readonly created: string[] = [];
  private readonly children: Array<{ stop(): Promise<void> }> = [];
  server: Server | null = null;

  ns(name: string): string {
    return `${this.prefix}${name}`;
  }
  routerNs(router: RouterSpec): string {
    return this.ns(`r-${router.name}`);
  }
  homeNs(name: string): string {
    return this.ns(`h-${name}`);
  }

  private async addNamespace(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.created.push(name);
  }

  /** Runs `ip` commands (one per line, without the `ip`) inside a namespace in one process. */
  private batch(ns: string, commands: readonly string[]): Promise<string> {
    return run('ip', ['-n', ns, '-batch', '-'], `${commands.join('\n')}\n`);
  }

  exec(ns: string, command: string, args: readonly string[], input?: string): Promise<string> {
    return run('ip', ['netns', 'exec', ns, command, ...args], input);
  }

  /** `noray doctor ARGS` (the built bin) on a lab machine: its exit code and output. */
  doctor(ns: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runStatus('ip', ['netns', 'exec', ns, process.execPath, BIN, 'doctor', ...args]);
  }

  async buildPublic(): Promise<void> {
    await this.addNamespace(this.pub);
    await this.batch(this.pub, ['link set lo up', 'link add br0 type bridge', `addr add ${SERVER_IP}/24 dev br0`, 'link set br0 up']);
  }

  /** A veth from the bridge into `ns`, named `ifname` there. */
  private plugIntoBridge(ns: string, port: string, ifname: string): Promise<string> {
    return this.batch(this.pub, [`link add ${port} type veth peer name ${ifname} netns ${ns}`, `link set ${port} master br0 up`]);
  }

  async buildRouter(router: RouterSpec, index: number): Promise<Agent> {
    const rns = this.routerNs(router);
    const hns = this.homeNs(router.name);
    await Promise.all([this.addNamespace(rns), this.addNamespace(hns)]);
    await this.plugIntoBridge(rns, `v${index}`, 'wan');
    await this.batch(rns, [
      'link set lo up',
      `addr add ${router.wan}/24 dev wan`,
      'link set wan up',
      `route add default via ${SERVER_IP}`,
      `link add lan type veth peer name eth0 netns ${hns}`,
      `addr add ${router.lan}.1/24 dev lan`,
      'link set lan up',
    ]);
    const machines = Array.from({ length: router.machines }, (_, i) => `${router.lan}.${i + 2}`);
    await Promise.all([
      this.batch(hns, [
        'link set lo up',
        ...machines.map((address) => `addr add ${address}/24 dev eth0`),
        'link set eth0 up',
        `route add default via ${router.lan}.1`,
      ]),
      this.exec(rns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']),
      this.exec(rns, 'iptables-restore', [], rules(router)),
    ]);
    return this.startAgent(hns, machines);
  }

  async buildOpen(open: OpenSpec, index: number): Promise<Agent> {
    const ns = this.homeNs(open.name);
    await this.addNamespace(ns);
    await this.plugIntoBridge(ns, `v${index}`, 'eth0');
    await this.batch(ns, ['link set lo up', `addr add ${open.address}/24 dev eth0`, 'link set eth0 up']);
    return this.startAgent(ns, [open.address]);
  }

  private startAgent(ns: string, addresses: string[]): Agent {
    const agent = new Agent(ns, addresses);
    this.children.push(agent);
    return agent;
  }

  startServer(env: Record<string, string>): Server {
    const server = new Server(this.pub, env);
    this.children.push(server);
    this.server = server;
    return server;
  }

  /** Stops every process, then deletes every namespace. Safe to call twice. */
  async teardown(): Promise<void> {
    await Promise.allSettled(this.children.splice(0).map((child) => child.stop()));
    await Promise.allSettled(this.created.splice(0).map(destroyNamespace));
  }

  /** Last resort from a signal or exit handler: no awaiting possible. */
  teardownSync(): void {
    for (const name of this.created.splice(0)) {
      const pids = runSync('ip', ['netns', 'pids', name]).out;
      for (const pid of pids.split('\n').map(Number).filter((n) => n > 0)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      runSync('ip', ['netns', 'del', name]);
    }
  }
}
