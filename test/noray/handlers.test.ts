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

  it('sends a repeated connect to the host once and stops notifying a host past its rate', async () => {
    const { register, wire, peer, run } = setup();
    const host = peer('host');
    await run(host, 'register-host');
    await register(host, '1.1.1.1', 1111);
    const client = peer('client');
    await run(client, 'register-host');
    await register(client, '2.2.2.2', 2222);
    wire.length = 0;
    await run(client, 'connect oid1');
    await run(client, 'connect oid1');
    expect(wire).toEqual([
      { to: 'client', line: 'connect 1.1.1.1:1111\n' },
      { to: 'host', line: 'connect 2.2.2.2:2222\n' },
      { to: 'client', line: 'connect 1.1.1.1:1111\n' },
    ]);
  });

  it('answers a requester past its connect rate with an error and does not notify the host', async () => {
    const { register, wire, peer, run } = setup();
    const host = peer('host');
    await run(host, 'register-host');
    await register(host, '1.1.1.1', 1111);
    const client = peer('client');
    await run(client, 'register-host');
    await register(client, '2.2.2.2', 2222);
    for (let n = 0; n < 20; n++) await run(client, 'connect oid1');
    wire.length = 0;
    await run(client, 'connect oid1');
    expect(wire).toEqual([{ to: 'client', line: 'error too many connect requests, slow down\n' }]);
  });

  it('keeps a custom OpenID freed by a disconnect for the holder of its last PrivateID', async () => {
    const { wire, peer, run, commands } = setup();
    const owner = peer('owner');
    await run(owner, 'register-host lobby');
    const pid = owner.session!.secret;
    await commands.disconnected(owner);
    wire.length = 0;
    const thief = peer('thief');
    await run(thief, 'register-host lobby');
    await run(thief, 'register-host lobby wrong-pid');
    expect(wire).toEqual([
      { to: 'thief', line: 'error OpenID lobby is reserved, try later\n' },
      { to: 'thief', line: 'error OpenID lobby is reserved, try later\n' },
    ]);
    wire.length = 0;
    const back = peer('back');
    await run(back, `register-host lobby ${pid}`);
    expect(wire.map((entry) => entry.line)[0]).toBe('set-oid lobby\n');
    // Taken back, the reservation is over: the next disconnect starts a new one with the new pid.
    expect(back.session!.secret).not.toBe(pid);
  });
});
