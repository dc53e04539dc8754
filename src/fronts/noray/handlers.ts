import type { Logger } from 'pino';
import type { AddressPolicy } from '../../core/address-policy.js';
import type { AddressBook } from '../../core/address-book.js';
import type { Delivery } from '../../core/delivery.js';
import type { SessionRecord, SessionStore } from '../../core/directory.js';
import type { RelayEngine } from '../../core/relay/engine.js';
import { maskSecret } from '../../core/ids.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { nodeOf } from '../../core/shared-state.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { encodeCommand, isValidCustomOid, type Command } from './codec.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import { PunchthroughOutcomes } from './punch-outcomes.js';
import { systemClock, type Clock } from '../../core/clock.js';
import type { RelayBridge } from './relay-bridge.js';
import { DEFAULT_ABUSE_OPTIONS, NorayAbuseGuard, splitRegistration, type NorayAbuseOptions } from './abuse.js';

/** The far end of one control connection, as the handlers see it. */
export interface ControlPeer {
  /** Unique per connection: the delivery address of the sessions registered on it. */
  readonly id: string;
  send(line: string): void;
  session: HostSession | null;
  readonly remote: string;
}

/**
 * A registered player: reachable by its OpenID, proves itself to the registrar with its PrivateID.
 * It names its control connection by id (for delivery), never by reference, so it can be stored anywhere.
 */
export interface HostSession extends SessionRecord {
  readonly connection: string;
}

export interface NorayHandlerDeps {
  readonly sessions: SessionStore<HostSession>;
  readonly addresses: AddressBook;
  /** Lines to control connections by id. */
  readonly delivery: Delivery<string>;
  readonly relay: RelayEngine | null;
  readonly newOid: () => string;
  readonly newPid: () => string;
  readonly newSessionId: () => string;
  readonly logger: Logger;
  readonly metrics: NorayMetrics;
  /** Most sessions registered through this process at once. */
  readonly maxSessions: number;
  readonly limits: LimitSink<NorayLimitReason>;
  readonly addressPolicy: AddressPolicy;
  /** Rates, coalescing and OpenID reservation (abuse.ts); the option defaults unless given. */
  readonly abuse?: NorayAbuseOptions;
  readonly clock?: Clock;
  /** In a cluster: this node's id, and the bridge that relays to hosts registered on other nodes. */
  readonly cluster?: { readonly nodeId: string; readonly bridge: RelayBridge | null };
}

/** Draws of a random OpenID before registration gives up (see freshOid). */
const MAX_OID_DRAWS = 64;

const KNOWN = new Set(['register-host', 'connect', 'connect-relay', 'echo']);

/** Turns control commands into core calls and answers; every failure is answered with `error REASON`. */
export class NorayCommands {
  /** Sessions registered through this process. */
  private readonly local = new Set<HostSession>();
  private readonly failures = new ThrottledLog();
  /** Sessions under an OpenID their game picked: reserved for their owner when the connection closes. */
  private readonly custom = new WeakSet<HostSession>();
  private readonly guard: NorayAbuseGuard;
  private readonly clock: Clock;
  /** When each local session registered (the dashboard's age column). */
  private readonly registeredAt = new WeakMap<HostSession, number>();
  private readonly punches: PunchthroughOutcomes;

  constructor(private readonly deps: NorayHandlerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.guard = new NorayAbuseGuard(deps.abuse ?? DEFAULT_ABUSE_OPTIONS, this.clock);
    this.punches = new PunchthroughOutcomes(this.clock);
  }

  /** Sessions registered through this process. */
  get sessionCount(): number {
    return this.local.size;
  }

  /** Sessions registered through this process, with the time each registered. */
  *localSessions(): Generator<{ readonly session: HostSession; readonly since: number }> {
    for (const session of this.local) yield { session, since: this.registeredAt.get(session) ?? 0 };
  }

  /**
   * Handles one command. Commands of one connection must be handled one after another (the
   * control server chains them), so replies keep the order of the requests.
   */
  async handle(peer: ControlPeer, command: Command): Promise<void> {
    const label = KNOWN.has(command.name) ? command.name : 'unknown';
    const stopTimer = this.deps.metrics.commandDuration.startTimer({ command: label });
    try {
      switch (command.name) {
        case 'register-host':
          return await this.registerHost(peer, command.data);
        case 'connect':
          return await this.connect(peer, command.data, false);
        case 'connect-relay':
          return await this.connect(peer, command.data, true);
        case 'echo':
          return peer.send(encodeCommand('echo', command.data));
        default:
          return this.fail(peer, `unknown command "${command.name.slice(0, 64)}"`);
      }
    } catch (error) {
      this.deps.metrics.commandException.inc({ command: label });
      // Once a minute: a store that cannot answer (a cluster's Redis down) fails every command.
      this.failures.report((skipped) => this.deps.logger.error({ err: error, command: label, skipped }, 'command failed'));
      this.fail(peer, 'internal error');
    } finally {
      stopTimer();
    }
  }

  /** The control connection closed: the player is no longer reachable by its OpenID. */
  async disconnected(peer: ControlPeer): Promise<void> {
    const session = peer.session;
    peer.session = null;
    if (!session) return;
    // Only the holder of its last PrivateID may take a custom OpenID back for a while (abuse.ts).
    if (this.custom.has(session)) this.guard.reservations.reserve(session.publicId, session.secret);
    await this.endSession(session);
  }

  private async registerHost(peer: ControlPeer, data: string): Promise<void> {
    const { sessions } = this.deps;
    const { oid: requestedOid, proof } = splitRegistration(data);
    if (requestedOid !== '') {
      if (!isValidCustomOid(requestedOid)) {
        return this.fail(peer, 'invalid OpenID: use 1-64 characters without spaces');
      }
      const holder = await sessions.byPublicId(requestedOid);
      if (holder && holder.id !== peer.session?.id) return this.fail(peer, `OpenID ${requestedOid} is taken`);
      if (!holder && this.guard.reservations.check(requestedOid, proof) === 'reserved') {
        this.deps.limits.report('oid_reserved', peer.remote);
        return this.fail(peer, `OpenID ${requestedOid} is reserved, try later`);
      }
    }
    // The latest registration on a connection replaces the earlier one.
    if (peer.session) {
      const previous = peer.session;
      peer.session = null;
      await this.endSession(previous);
    } else if (this.local.size >= this.deps.maxSessions) {
      this.deps.limits.report('max_sessions', peer.remote);
      return this.fail(peer, 'server full, try later');
    }
    const session = requestedOid !== '' ? await this.claim(peer, requestedOid) : await this.claimFresh(peer);
    if (session === null) {
      return this.fail(peer, requestedOid !== '' ? `OpenID ${requestedOid} is taken` : 'could not register, try again');
    }
    peer.session = session;
    this.local.add(session);
    this.registeredAt.set(session, this.clock.now());
    if (requestedOid !== '') {
      this.custom.add(session);
      this.guard.reservations.release(requestedOid);
    }
    this.deps.metrics.activeHosts.set(this.local.size);
    this.deps.logger.info({ oid: session.publicId, pid: maskSecret(session.secret), remote: peer.remote }, 'host registered');
    peer.send(encodeCommand('set-oid', session.publicId));
    peer.send(encodeCommand('set-pid', session.secret));
  }

  private async claim(peer: ControlPeer, publicId: string): Promise<HostSession | null> {
    const session: HostSession = {
      id: this.deps.newSessionId(),
      publicId,
      secret: this.deps.newPid(),
      connection: peer.id,
    };
    return (await this.deps.sessions.claim(session)) ? session : null;
  }

  /**
   * A session under a server-made OpenID, or null after a bounded number of draws: the config
   * check keeps the id space at least 16 times the session limit, so 64 misses in a row do not
   * happen by chance, and a config that slipped past it must not spin forever.
   */
  private async claimFresh(peer: ControlPeer): Promise<HostSession | null> {
    for (let attempt = 0; attempt < MAX_OID_DRAWS; attempt++) {
      const session = await this.claim(peer, this.deps.newOid());
      if (session) return session;
    }
    return null;
  }

  private async connect(peer: ControlPeer, oid: string, viaRelay: boolean): Promise<void> {
    const { sessions, addresses, relay, delivery } = this.deps;
    const requester = peer.session;
    if (!requester) return this.fail(peer, 'register-host first');
    const requesterEndpoint = await addresses.endpointOf(requester.id);
    if (!requesterEndpoint) return this.fail(peer, 'register your address with the UDP registrar first');
    if (oid === '') return this.fail(peer, 'missing OpenID');
    if (!this.guard.request(peer.id)) {
      this.deps.limits.report('connect_rate', peer.remote);
      return this.fail(peer, 'too many connect requests, slow down');
    }
    const host = await sessions.byPublicId(oid);
    if (!host) {
      if (!this.guard.unknownOid(peer.remote)) {
        this.deps.limits.report('unknown_oid_rate', peer.remote);
        return this.fail(peer, 'too many unknown OpenIDs, try later');
      }
      return this.fail(peer, `unknown OpenID ${oid.slice(0, 64)}`);
    }
    const hostEndpoint = await addresses.endpointOf(host.id);
    if (!hostEndpoint) return this.fail(peer, 'host has not registered its address yet');
    // What others send must not flood a host: rate-limited per host, repeats within a window sent once.
    const verdict = this.guard.notify(host.id, `${viaRelay ? 'connect-relay' : 'connect'} ${requesterEndpoint.address}:${requesterEndpoint.port}`);
    if (verdict === 'host_rate') {
      this.deps.limits.report('connect_host_rate', peer.remote);
      return this.fail(peer, 'host is busy, try later');
    }
    if (verdict === 'coalesced') this.deps.limits.report('connect_coalesced', peer.remote);
    const notify = verdict === 'send';

    if (!viaRelay) {
      peer.send(encodeCommand('connect', `${hostEndpoint.address}:${hostEndpoint.port}`));
      if (notify) delivery.deliver(host.connection, encodeCommand('connect', `${requesterEndpoint.address}:${requesterEndpoint.port}`));
      if (this.punches.punched(requester.id, host.id)) this.deps.metrics.punchPairs.inc();
      this.deps.logger.debug({ oid, remote: peer.remote }, 'connect');
      return;
    }
    if (!relay) return this.fail(peer, 'relaying is disabled on this server');
    const { addressPolicy } = this.deps;
    if (!addressPolicy.allows(hostEndpoint.address) || !addressPolicy.allows(requesterEndpoint.address)) {
      this.deps.limits.report('denied_peer', peer.remote);
      return this.fail(peer, 'relaying to this address is not allowed');
    }
    if (this.punches.fellBack(requester.id, host.id)) this.deps.metrics.relayFallbacks.inc();
    const charge = { source: sourceKey(requesterEndpoint.address), session: requester.id };
    const hostNode = nodeOf(host.connection);
    const { cluster } = this.deps;
    if (cluster !== undefined && hostNode !== undefined && hostNode !== cluster.nodeId) {
      // The host's half of the relay lives on its own node, which also tells the host.
      if (cluster.bridge === null) return this.fail(peer, 'relaying is disabled on this server');
      const across = await cluster.bridge.introduce(requesterEndpoint, host.publicId, hostNode, charge);
      if (!across.ok) return this.relayRefused(peer, across.reason);
      peer.send(encodeCommand('connect-relay', across.clientPort));
      this.deps.logger.debug({ oid, remote: peer.remote, hostNode, clientPort: across.clientPort }, 'connect-relay across nodes');
      return;
    }
    const result = relay.introduce(requesterEndpoint, hostEndpoint, charge);
    if (!result.ok) return this.relayRefused(peer, result.reason);
    peer.send(encodeCommand('connect-relay', result.portB));
    if (notify) delivery.deliver(host.connection, encodeCommand('connect-relay', result.portA));
    this.deps.logger.debug({ oid, remote: peer.remote, hostPort: result.portB, clientPort: result.portA }, 'connect-relay');
  }

  private relayRefused(peer: ControlPeer, reason: string): void {
    if (reason === 'source_limit' || reason === 'session_limit') {
      this.deps.limits.report(reason === 'source_limit' ? 'relays_per_source' : 'relays_per_session', peer.remote);
      return this.fail(peer, 'too many relays for your address, try later');
    }
    if (reason === 'no_free_port') return this.fail(peer, 'no relay port free, try later');
    if (reason === 'same_endpoint') return this.fail(peer, 'cannot relay to yourself');
    return this.fail(peer, reason);
  }

  private async endSession(session: HostSession): Promise<void> {
    this.local.delete(session);
    this.deps.metrics.activeHosts.set(this.local.size);
    await Promise.all([this.deps.sessions.release(session), this.deps.addresses.forget(session.id)]);
  }

  private fail(peer: ControlPeer, reason: string): void {
    peer.send(encodeCommand('error', reason));
  }
}
