// The command handlers without sockets: what goes to whom, in which order.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/core/address-policy.js';
import { ManualClock } from '../../src/core/clock.js';
import { SessionDirectory } from '../../src/core/directory.js';
import { AddressRegistrar } from '../../src/core/registrar.js';
import { parseCommand } from '../../src/fronts/noray/codec.js';
import { NorayCommands, type ControlPeer, type HostSession } from '../../src/fronts/noray/handlers.js';
import { createNorayMetrics } from '../../src/fronts/noray/metrics.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';

function setup(newOid?: () => string) {
  const registry = new Registry();
  const logger = pino({ level: 'silent' });
  const directory = new SessionDirectory<HostSession>();
  const registrar = new AddressRegistrar<HostSession>((secret) => directory.bySecret(secret));
  let counter = 0;
  const commands = new NorayCommands({
    directory,
    registrar,
    relay: null,
    newOid: newOid ?? (() => `oid${++counter}`),
    newPid: () => `pid${++counter}`,
    logger,
    metrics: createNorayMetrics(registry),
    maxSessions: 100,
    limits: new LimitReporter(registry, logger, new ManualClock()),
    addressPolicy: new AddressPolicy(false),
  });
  /** Every line sent to any peer, in the order it was sent. */
  const wire: Array<{ to: string; line: string }> = [];
  const peer = (name: string): ControlPeer => ({
    remote: name,
    session: null,
    send: (line) => wire.push({ to: name, line }),
  });
  const run = (p: ControlPeer, line: string) => commands.handle(p, parseCommand(line));
  return { registrar, wire, peer, run };
}

describe('noray command handlers', () => {
  it('answers connect to the requester first, then to the host', () => {
    const { registrar, wire, peer, run } = setup();
    const host = peer('host');
    const client = peer('client');
    run(host, 'register-host');
    run(client, 'register-host');
    registrar.register(host.session!.secret, { address: '1.1.1.1', port: 1111 });
    registrar.register(client.session!.secret, { address: '2.2.2.2', port: 2222 });
    wire.length = 0;
    run(client, `connect ${host.session!.publicId}`);
    expect(wire).toEqual([
      { to: 'client', line: 'connect 1.1.1.1:1111\n' },
      { to: 'host', line: 'connect 2.2.2.2:2222\n' },
    ]);
  });

  it('answers register-host with set-oid before set-pid, and connect-relay without relaying with an error', () => {
    const { registrar, wire, peer, run } = setup();
    const host = peer('host');
    run(host, 'register-host');
    expect(wire.map((entry) => entry.line)).toEqual(['set-oid oid1\n', 'set-pid pid2\n']);
    registrar.register('pid2', { address: '1.1.1.1', port: 1 });
    wire.length = 0;
    run(host, 'connect-relay oid1');
    expect(wire).toEqual([{ to: 'host', line: 'error relaying is disabled on this server\n' }]);
  });

  it('gives up drawing OpenIDs after a bounded number of collisions instead of spinning', () => {
    let draws = 0;
    const { wire, peer, run } = setup(() => {
      draws++;
      return 'same';
    });
    run(peer('first'), 'register-host');
    expect(wire.map((entry) => entry.line)[0]).toBe('set-oid same\n');
    wire.length = 0;
    draws = 0;
    run(peer('second'), 'register-host');
    expect(wire).toEqual([{ to: 'second', line: 'error could not register, try again\n' }]);
    expect(draws).toBe(64);
  });
});
