// Every metric the README promises, read from /metrics after real traffic: values, not only names.
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { ManualClock } from '../../src/core/clock.js';
import { EVERY_FRONT_ON, port, startApp } from '../helpers/app.js';
import { parseSamples } from '../helpers/metrics.js';
import { describeEachEngine } from '../helpers/relay-engines.js';
import { bindLocalPort, NetfoxClient } from '../clients/netfox.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

const clients: NetfoxClient[] = [];
const sockets: UdpSocket[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const socket of sockets.splice(0)) socket.close();
});

async function scrape(app: App): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port(app, 'ops', 'http')}/metrics`);
  expect(response.status).toBe(200);
  return parseSamples(await response.text());
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function player(app: App): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
  clients.push(client);
  return client;
}

async function udp(localPort = 0): Promise<UdpSocket> {
  const socket = await bindLocalPort(localPort);
  sockets.push(socket);
  return socket;
}

/** Sends one datagram and resolves with the first reply. */
async function request(socket: UdpSocket, payload: string, toPort: number): Promise<string> {
  const reply = new Promise<string>((resolve) => socket.once('message', (message) => resolve(message.toString('utf8'))));
  socket.send(payload, toPort, '127.0.0.1');
  return reply;
}

/** Sends each payload and waits until `receiver` has all of them. */
async function relayed(sender: UdpSocket, receiver: UdpSocket, toPort: number, sizes: number[]): Promise<void> {
  let received = 0;
  const onMessage = () => received++;
  receiver.on('message', onMessage);
  try {
    for (const size of sizes) sender.send(Buffer.alloc(size, 7), toPort, '127.0.0.1');
    await until(async () => received === sizes.length, 'relayed datagrams');
  } finally {
    receiver.off('message', onMessage);
  }
}

/** Names of the noray front's metrics the README lists (the other fronts test theirs). */
const NORAY_FRONT_METRICS = [
  'noray_tcp_connections',
  'noray_active_hosts',
  'noray_relay_count',
  'noray_relay_ports_free',
  'noray_relay_drop_count',
  'noray_relay_expired',
  'noray_relay_size',
  'noray_relay_packets_total',
  'noray_relay_bytes_total',
  'noray_relay_mapping_learned_total',
  'noray_relay_mapping_relearned_total',
  'noray_remote_registrar_success',
  'noray_remote_registrar_fail',
  'noray_remote_registrar_repeat',
  'noray_command_duration',
  'noray_command_exception',
  'noray_stun_requests_total',
  'noray_limit_rejections_total',
  'noray_connect_pairs_total',
  'noray_connect_relay_fallbacks_total',
];

/**
 * Every full metric name the README mentions (prefixes like `noray_lobby_*` are not names);
 * `noray_remote_registrar_success|fail|repeat` is three.
 */
function readmeMetricNames(): string[] {
  const names = new Set<string>();
  for (const [mention] of README.matchAll(/\bnoray_[a-z_]*[a-z](?:\|[a-z]+)*\b/g)) {
    const [first = '', ...alternatives] = mention.split('|');
    names.add(first);
    for (const alternative of alternatives) names.add(first.replace(/[a-z]+$/, alternative));
  }
  // The README names it to say it is not collected.
  names.delete('noray_relay_duration');
  return [...names].sort();
}

describe('README metrics', () => {
  it('every noray-front metric of the README is asserted below', () => {
    // The other fronts test theirs, and test/ops-token.test.ts the ops server's noray_ops_*.
    const front = readmeMetricNames().filter((name) => !/^noray_(lobby|wsrelay|tcprelay|ops)_/.test(name));
    expect(front.sort()).toEqual([...NORAY_FRONT_METRICS].sort());
  });

  it('every metric the README names is exported with every front on', async () => {
    const app = await startApp(EVERY_FRONT_ON);
    const text = await (await fetch(`http://127.0.0.1:${port(app, 'ops', 'http')}/metrics`)).text();
    for (const name of readmeMetricNames()) expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
  });
});

describeEachEngine('noray front metrics after real relayed traffic', (engine) => {
  it('count connections, hosts, registrations, commands, limits, relays, datagrams, bytes, drops and expiry', async () => {
    const clock = new ManualClock();
    const app = await startApp(
      {
        udpRelayEngine: engine,
        httpPort: 0,
        socketPort: 0,
        udpRegistrarPort: 0,
        udpRelayPorts: Array.from({ length: 8 }, () => 0),
        udpRelayTimeout: 30_000,
        udpRelayCleanupInterval: 30_000,
        loginTimeout: 30_000,
        maxConnectionsPerIp: 3,
      },
      { clock },
    );
    const registrar = port(app, 'noray', 'registrar');

    // Two players register as netfox does; a third connection stays silent; a fourth is refused.
    const host = await player(app);
    await host.registerHost();
    expect(await host.registerRemote(registrar)).toBe('OK');
    const client = await player(app);
    await client.registerHost();
    expect(await client.registerRemote(registrar)).toBe('OK');
    const silent = await player(app);
    const refused = await player(app);
    expect(await refused.next('error')).toBe('server');

    // Registrar: the host registers again from the same port (repeat); a stranger sends a bad id (fail).
    const hostUdp = await udp(host.localPort);
    expect(await request(hostUdp, host.pid, registrar)).toBe('OK');
    const stranger = await udp();
    expect(await request(stranger, 'y'.repeat(128), registrar)).toBe('Unknown host pid!');

    client.putCommand('connect-relay', host.oid);
    const hostRelayPort = Number(await client.next('connect-relay'));
    const clientRelayPort = Number(await host.next('connect-relay'));
    const clientUdp = await udp(client.localPort);
    await relayed(clientUdp, hostUdp, hostRelayPort, [10, 20, 30, 40, 50]);
    await relayed(hostUdp, clientUdp, clientRelayPort, [100, 200, 300]);

    // The client's NAT rebinds: after NORAY_UDP_RELAY_RELEARN_AFTER of silence its new source is learned.
    clock.advance(3_000);
    const rebound = await udp();
    await relayed(rebound, hostUdp, hostRelayPort, [60]);

    // A datagram on a relay port no relay holds is dropped.
    const idle = (app.ports().noray?.relay as number[]).find((p) => p !== hostRelayPort && p !== clientRelayPort);
    stranger.send('nobody here', idle as number, '127.0.0.1');
    await until(async () => (await scrape(app)).get('noray_relay_drop_count{reason="unallocated"}') === 1, 'the drop');

    let m = await scrape(app);
    expect(m.get('noray_tcp_connections')).toBe(3);
    expect(m.get('noray_active_hosts')).toBe(2);
    expect(m.get('noray_remote_registrar_success')).toBe(2);
    expect(m.get('noray_remote_registrar_repeat')).toBe(1);
    expect(m.get('noray_remote_registrar_fail')).toBe(1);
    expect(m.get('noray_command_duration_count{command="register-host"}')).toBe(2);
    expect(m.get('noray_command_duration_count{command="connect-relay"}')).toBe(1);
    expect(m.get('noray_command_duration_sum{command="connect-relay"}')).toBeGreaterThan(0);
    expect(m.get('noray_command_duration_bucket{command="connect-relay",le="+Inf"}')).toBe(1);
    expect(m.get('noray_limit_rejections_total{front="noray",reason="max_connections_per_ip"}')).toBe(1);
    expect(m.get('noray_relay_count')).toBe(2);
    expect(m.get('noray_relay_ports_free')).toBe(6);
    expect(m.get('noray_relay_packets_total')).toBe(9);
    expect(m.get('noray_relay_bytes_total')).toBe(810);
    expect(m.get('noray_relay_mapping_learned_total')).toBe(1);
    expect(m.get('noray_relay_mapping_relearned_total')).toBe(1);
    // The histogram that used to read 0: bytes in _sum, datagrams in _count and the +Inf bucket.
    expect(m.get('noray_relay_size_sum')).toBe(810);
    expect(m.get('noray_relay_size_count')).toBe(9);
    expect(m.get('noray_relay_size_bucket{le="+Inf"}')).toBe(9);
    expect(m.get('noray_relay_expired')).toBe(0);
    // connect-relay without a connect before it: no punchthrough was tried (test/ops/dashboard.test.ts has one).
    expect(m.get('noray_connect_pairs_total')).toBe(0);
    expect(m.get('noray_connect_relay_fallbacks_total')).toBe(0);
    const drops = [...m].filter(([key]) => key.startsWith('noray_relay_drop_count{'));
    expect(drops.length).toBeGreaterThan(1);
    expect(drops.filter(([key]) => key !== 'noray_relay_drop_count{reason="unallocated"}').every(([, v]) => v === 0)).toBe(true);
    // No command failed internally: the counter has no sample at all.
    expect([...m.keys()].filter((key) => key.startsWith('noray_command_exception'))).toEqual([]);

    // Past the idle timeout and the login timeout: both relays are freed, the silent connection closed.
    clock.advance(61_000);
    await silent.waitClosed();
    await until(async () => (await scrape(app)).get('noray_tcp_connections') === 2, 'the silent connection to close');
    m = await scrape(app);
    expect(m.get('noray_relay_count')).toBe(0);
    expect(m.get('noray_relay_expired')).toBe(2);
    expect(m.get('noray_relay_ports_free')).toBe(8);
    expect(m.get('noray_limit_rejections_total{front="noray",reason="login_timeout"}')).toBe(1);
    expect(m.get('noray_tcp_closes_total{reason="login_timeout"}')).toBe(1);
    // Counters keep what they counted.
    expect(m.get('noray_relay_size_sum')).toBe(810);
    expect(m.get('noray_relay_size_count')).toBe(9);

    // The JSON form reads the same histogram.
    const json = await app.metrics.getMetricsAsJSON();
    const size = json.find((metric) => metric.name === 'noray_relay_size');
    expect(size?.values).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ metricName: 'noray_relay_size_sum', value: 810 }),
        expect.objectContaining({ metricName: 'noray_relay_size_count', value: 9 }),
      ]),
    );
  });
});
