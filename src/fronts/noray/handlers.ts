import type { Logger } from 'pino';
import type { AddressPolicy } from '../../core/address-policy.js';
import type { SessionDirectory } from '../../core/directory.js';
import type { AddressRegistrar } from '../../core/registrar.js';
import type { UdpRelayEngine } from '../../core/relay/engine.js';
import { maskSecret } from '../../core/ids.js';
import type { LimitReporter } from '../../ops/limit-reporter.js';
import { encodeCommand, isValidCustomOid, type Command } from './codec.js';
import type { NorayMetrics } from './metrics.js';

/** The far end of one control connection, as the handlers see it. */
export interface ControlPeer {
  send(line: string): void;
  session: HostSession | null;
  readonly remote: string;
}

/** A registered player: reachable by its OpenID, proves itself to the registrar with its PrivateID. */
export interface HostSession {
  readonly publicId: string;
  readonly secret: string;
  readonly peer: ControlPeer;
}

export interface NorayHandlerDeps {
  readonly directory: SessionDirectory<HostSession>;
  readonly registrar: AddressRegistrar<HostSession>;
  readonly relay: UdpRelayEngine | null;
  readonly newOid: () => string;
  readonly newPid: () => string;
  readonly logger: Logger;
  readonly metrics: NorayMetrics;
  readonly maxSessions: number;
  readonly limits: LimitReporter;
  readonly addressPolicy: AddressPolicy;
}

/** Draws of a random OpenID before registration gives up (see freshOid). */
const MAX_OID_DRAWS = 64;

const KNOWN = new Set(['register-host', 'connect', 'connect-relay', 'echo']);

/** Turns control commands into core calls and answers; every failure is answered with `error REASON`. */
export class NorayCommands {
  constructor(private readonly deps: NorayHandlerDeps) {}

  handle(peer: ControlPeer, command: Command): void {
    const label = KNOWN.has(command.name) ? command.name : 'unknown';
    const stopTimer = this.deps.metrics.commandDuration.startTimer({ command: label });
    try {
      switch (command.name) {
        case 'register-host':
          return this.registerHost(peer, command.data);
        case 'connect':
          return this.connect(peer, command.data, false);
        case 'connect-relay':
          return this.connect(peer, command.data, true);
        case 'echo':
          return peer.send(encodeCommand('echo', command.data));
        default:
          return this.fail(peer, `unknown command "${command.name.slice(0, 64)}"`);
      }
    } catch (error) {
      this.deps.metrics.commandException.inc({ command: label });
      this.deps.logger.error({ err: error, command: label }, 'command failed');
      this.fail(peer, 'internal error');
    } finally {
      stopTimer();
    }
  }

  /** The control connection closed: the player is no longer reachable by its OpenID. */
  disconnected(peer: ControlPeer): void {
    if (peer.session) this.endSession(peer.session);
    peer.session = null;
  }

  private registerHost(peer: ControlPeer, requestedOid: string): void {
    const { directory } = this.deps;
    if (requestedOid !== '') {
      if (!isValidCustomOid(requestedOid)) {
        return this.fail(peer, 'invalid OpenID: use 1-64 characters without spaces');
      }
      const holder = directory.byPublicId(requestedOid);
      if (holder && holder.peer !== peer) return this.fail(peer, `OpenID ${requestedOid} is taken`);
    }
    // The latest registration on a connection replaces the earlier one.
    if (peer.session) this.endSession(peer.session);
    else if (directory.size >= this.deps.maxSessions) {
      this.deps.limits.report('noray', 'max_sessions', peer.remote);
      return this.fail(peer, 'server full, try later');
    }
    const publicId = requestedOid !== '' ? requestedOid : this.freshOid();
    if (publicId === null) return this.fail(peer, 'could not register, try again');
    const session: HostSession = {
      publicId,
      secret: this.deps.newPid(),
      peer,
    };
    if (!directory.add(session)) return this.fail(peer, 'could not register, try again');
    peer.session = session;
    this.deps.metrics.activeHosts.set(directory.size);
    this.deps.logger.info({ oid: session.publicId, pid: maskSecret(session.secret), remote: peer.remote }, 'host registered');
    peer.send(encodeCommand('set-oid', session.publicId));
    peer.send(encodeCommand('set-pid', session.secret));
  }

  private connect(peer: ControlPeer, oid: string, viaRelay: boolean): void {
    const { directory, registrar, relay } = this.deps;
    const requester = peer.session;
    if (!requester) return this.fail(peer, 'register-host first');
    const requesterEndpoint = registrar.endpointOf(requester);
    if (!requesterEndpoint) return this.fail(peer, 'register your address with the UDP registrar first');
    if (oid === '') return this.fail(peer, 'missing OpenID');
    const host = directory.byPublicId(oid);
    if (!host) return this.fail(peer, `unknown OpenID ${oid.slice(0, 64)}`);
    const hostEndpoint = registrar.endpointOf(host);
    if (!hostEndpoint) return this.fail(peer, 'host has not registered its address yet');

    if (!viaRelay) {
      peer.send(encodeCommand('connect', `${hostEndpoint.address}:${hostEndpoint.port}`));
      host.peer.send(encodeCommand('connect', `${requesterEndpoint.address}:${requesterEndpoint.port}`));
      this.deps.logger.debug({ oid, remote: peer.remote }, 'connect');
      return;
    }
    if (!relay) return this.fail(peer, 'relaying is disabled on this server');
    const { addressPolicy } = this.deps;
    if (!addressPolicy.allows(hostEndpoint.address) || !addressPolicy.allows(requesterEndpoint.address)) {
      this.deps.limits.report('noray', 'denied_peer', peer.remote);
      return this.fail(peer, 'relaying to this address is not allowed');
    }
    const result = relay.introduce(requesterEndpoint, hostEndpoint);
    if (!result.ok) {
      return this.fail(peer, result.reason === 'no_free_port' ? 'no relay port free, try later' : 'cannot relay to yourself');
    }
    peer.send(encodeCommand('connect-relay', result.portB));
    host.peer.send(encodeCommand('connect-relay', result.portA));
    this.deps.logger.debug({ oid, remote: peer.remote, hostPort: result.portB, clientPort: result.portA }, 'connect-relay');
  }

  /**
   * A server-made OpenID not in use, or null after a bounded number of draws: the config check
   * keeps the id space at least 16 times the session limit, so 64 misses in a row do not happen
   * by chance, and a config that slipped past it must not spin the event loop.
   */
  private freshOid(): string | null {
    for (let attempt = 0; attempt < MAX_OID_DRAWS; attempt++) {
      const oid = this.deps.newOid();
      if (!this.deps.directory.isTaken(oid)) return oid;
    }
    return null;
  }

  private endSession(session: HostSession): void {
    this.deps.directory.remove(session);
    this.deps.registrar.forget(session);
    this.deps.metrics.activeHosts.set(this.deps.directory.size);
  }

  private fail(peer: ControlPeer, reason: string): void {
    peer.send(encodeCommand('error', reason));
  }
}
