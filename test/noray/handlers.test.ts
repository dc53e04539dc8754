// The command handlers without sockets: what goes to whom, in which order.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/core/address-policy.js';
import { ManualClock } from '../../src/core/clock.js';
import { MemoryAddressBook } from '../../src/core/address-book.js';
import { LocalDelivery } from '../../src/core/delivery.js';
import { MemorySessionStore } from '../../src/core/directory.js';
import { parseCommand } from '../../src/fronts/noray/codec.js';
import { NorayCommands, type ControlPeer, type HostSession } from '../../src/fronts/noray/handlers.js';
import { createNorayMetrics } from '../../src/fronts/noray/metrics.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';

function setup(newOid?: () => string) {
  const registry = new Registry();
  const logger = pino({ level: 'silent' });
  const sessions = new MemorySessionStore<HostSession>();
  const addresses = new MemoryAddressBook();
  const delivery = new LocalDelivery<string>();
  let counter = 0;
  let sessionCounter = 0;
  const commands = new NorayCommands({
    sessions,
    addresses,
    delivery,
    relay: null,
    newOid: newOid ?? (() => `oid${++counter}`),
    newPid: () => `pid${++counter}`,
    newSessionId: () => `session${++sessionCounter}`,
    logger,
    metrics: createNorayMetrics(registry),
    maxSessions: 100,
    limits: new LimitReporter(registry, logger, new ManualClock()).forFront('noray'),
    addressPolicy: new AddressPolicy(false),
  });
  /** Every line sent to any peer, in the order it was sent. */
  const wire: Array<{ to: string; line: string }> = [];
  const peer = (name: string): ControlPeer => {
    const p: ControlPeer = { id: `connection-${name}`, remote: name, session: null, send: (line) => wire.push({ to: name, line }) };
    delivery.attach(p.id, (line) => p.send(line));
    return p;
  };
  const run = (p: ControlPeer, line: string) => commands.handle(p, parseCommand(line));
  /** What the UDP registrar does on a PrivateID datagram. */
  const register = (p: ControlPeer, address: string, port: number) => addresses.record(p.session!.id, { address, port });
  return { sessions, wire, peer, run, register, commands };
}

describe('noray command handlers', async () => {
  it('answers connect to the requester first, then to the host', async () => {
    const { register, wire, peer, run } = setup();
    const host = peer('host');
    const client = peer('client');
    await run(host, 'register-host');
    await run(client, 'register-host');
    await register(host, '1.1.1.1', 1111);
    await register(client, '2.2.2.2', 2222);
    wire.length = 0;
    await run(client, `connect ${host.session!.publicId}`);
    expect(wire).toEqual([
      { to: 'client', line: 'connect 1.1.1.1:1111\n' },
      { to: 'host', line: 'connect 2.2.2.2:2222\n' },
    ]);
  });

  it('answers register-host with set-oid before set-pid, and connect-relay without relaying with an error', async () => {
    const { register, wire, peer, run } = setup();
    const host = peer('host');
    await run(host, 'register-host');
    expect(wire.map((entry) => entry.line)).toEqual(['set-oid oid1\n', 'set-pid pid2\n']);
    await register(host, '1.1.1.1', 1);
    wire.length = 0;
    await run(host, 'connect-relay oid1');
    expect(wire).toEqual([{ to: 'host', line: 'error relaying is disabled on this server\n' }]);
  });

  it('gives up drawing OpenIDs after a bounded number of collisions instead of spinning', async () => {
    let draws = 0;
    const { wire, peer, run } = setup(() => {
      draws++;
      return 'same';
    });
    await run(peer('first'), 'register-host');
    expect(wire.map((entry) => entry.line)[0]).toBe('set-oid same\n');
    wire.length = 0;
    draws = 0;
    await run(peer('second'), 'register-host');
    expect(wire).toEqual([{ to: 'second', line: 'error could not register, try again\n' }]);
    expect(draws).toBe(64);
  });
});
