/** Control-plane benchmarks: each front against its bare baseline, same generator, same run. */
import { Child, cpuPercent, sampleProc } from './lib/child.js';
import type { BenchContext } from './context.js';
import { norayEnv, startNoray } from './relay.js';

export interface ControlRow {
  name: string;
  unit: string;
  noray: number | null;
  bare: number | null;
  ratio: number | null;
  norayCpu: number | null;
  bareCpu: number | null;
  /** The generator's CPU while measuring noray / bare (100 = one full core: it may be the limit). */
  loadCpuNoray: number | null;
  loadCpuBare: number | null;
  note: string;
}

type Ports = Record<string, Record<string, number | number[]>>;

interface Measured {
  value: number;
  cpu: number | null;
  loadCpu: number | null;
  errors?: number;
  firstError?: string | null;
}

async function measure(pid: number, loadPid: number, run: () => Promise<{ value: number; errors?: number; firstError?: string | null }>): Promise<Measured> {
  const before = sampleProc(pid);
  const loadBefore = sampleProc(loadPid);
  const result = await run();
  const after = sampleProc(pid);
  return { ...result, cpu: cpuPercent(before, after), loadCpu: cpuPercent(loadBefore, sampleProc(loadPid)) };
}

export async function controlSuite(ctx: BenchContext): Promise<ControlRow[]> {
  const env = norayEnv(0, {
    NORAY_UDP_RELAY_PORTS: '21000+99',
    NORAY_WSRELAY_HOST: '127.0.0.1',
    NORAY_WSRELAY_PORT: '0',
    NORAY_TCPRELAY_HOST: '127.0.0.1',
    NORAY_TCPRELAY_PORT: '0',
    NORAY_LOBBY_HOST: '127.0.0.1',
    NORAY_LOBBY_HTTP_PORT: '0',
    NORAY_LOBBY_UDP_PORT: '0',
  });
  const { server } = await startNoray(ctx, env, 'noray-control');
  const bare = await Child.start('bare-control.ts', { label: 'bare-control', cpu: ctx.serverCpu });
  const load = await Child.start('control-load.ts', { label: 'control-load', cpu: ctx.loadCpu });
  const rows: ControlRow[] = [];
  try {
    const np = await server.call<Ports>('ports');
    const bp = await bare.call<Ports>('ports');
    const durationMs = ctx.controlMs;
    const timeout = durationMs + 30_000;

    const row = async (
      name: string,
      unit: string,
      front: string,
      run: (ports: Record<string, number | number[]>, isBare: boolean) => Promise<{ value: number; errors?: number; firstError?: string | null }>,
      note: string,
    ) => {
      const nPorts = np[front];
      const bPorts = bp[front];
      let noray: Measured | null = null;
      let notes = note;
      if (nPorts) {
        try {
          noray = await measure(server.pid, load.pid, () => run(nPorts, false));
          if (noray.errors) notes += `; noray errors: ${noray.errors} (${noray.firstError ?? ''})`;
        } catch (error) {
          notes += `; noray failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
        }
      } else {
        notes += '; front not available';
      }
      const baseline = bPorts ? await measure(bare.pid, load.pid, () => run(bPorts, true)) : null;
      const r: ControlRow = {
        name,
        unit,
        noray: noray ? Math.round(noray.value) : null,
        bare: baseline ? Math.round(baseline.value) : null,
        ratio: noray && baseline && baseline.value > 0 ? noray.value / baseline.value : null,
        norayCpu: noray?.cpu ?? null,
        bareCpu: baseline?.cpu ?? null,
        loadCpuNoray: noray?.loadCpu ?? null,
        loadCpuBare: baseline?.loadCpu ?? null,
        note: notes,
      };
      ctx.log(`  ${name}: noray ${r.noray ?? '-'} vs bare ${r.bare ?? '-'} ${unit} (server cpu ${r.norayCpu?.toFixed(0) ?? '-'}% / ${r.bareCpu?.toFixed(0) ?? '-'}%, load cpu ${r.loadCpuNoray?.toFixed(0) ?? '-'}% / ${r.loadCpuBare?.toFixed(0) ?? '-'}%) ${notes}`);
      rows.push(r);
    };

    const flows = (result: { flows: number; elapsedMs: number; errors: number; firstError: string | null }) => ({
      value: result.flows / (result.elapsedMs / 1000),
      errors: result.errors,
      firstError: result.firstError,
    });

    await row('noray register+registrar+connect-relay', 'flows/s', 'noray', async (p) =>
      flows(await load.call('norayFlows', { control: p.control, registrar: p.registrar, concurrency: 32, durationMs }, timeout)),
      '2 TCP sessions, 2 registrar round trips, 1 connect-relay per flow; bare = net line server + dgram OK',
    );
    await row('lobby create+join+mediation', 'flows/s', 'lobby', async (p) =>
      flows(await load.call('lobbyFlows', { http: p.http, udp: p.udp, concurrency: 16, durationMs }, timeout)),
      '2 WebSockets, 3 HTTP POSTs, 2 UDP captures, mediation to lobby_closed per flow; bare = http+ws+dgram, minimal state',
    );
    await row('wsrelay fan-out to 50 phones', 'msgs/s', 'wsrelay', async (p) => {
      const r = await load.call<{ messagesPerSec: number }>('wsFanout', { port: p.ws, phones: 50, durationMs, size: 100, window: 64 }, timeout);
      return { value: r.messagesPerSec };
    }, '100-byte JSON from the game server, each delivered to 50 phones; bare = ws broadcast');
    await row('tcprelay frames (10 pairs)', 'frames/s', 'tcprelay', async (p, isBare) => {
      const r = await load.call<{ framesPerSec: number }>('tcpFrames', { port: p.tcp, pairs: 10, durationMs, size: 100, window: 64, init: !isBare }, timeout);
      return { value: r.framesPerSec };
    }, '100-byte payload MESSAGE frames, parsed, stamped and re-framed; bare = net pipe');
  } finally {
    await Promise.all([server.kill(), bare.kill(), load.kill()]);
  }
  return rows;
}
