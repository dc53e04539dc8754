import { AddressPolicy } from '../../core/address-policy.js';
import { MemoryAddressBook } from '../../core/address-book.js';
import { LocalDelivery } from '../../core/delivery.js';
import { OwnEndpoints } from '../../core/own-endpoints.js';
import { MemorySessionStore } from '../../core/directory.js';
import { randomIdGenerator, randomToken } from '../../core/ids.js';
import { isDescriptorExhaustion, openFileAdvice, readOpenFileLimit, relayPortBudget, type RelayPortBudget } from '../../core/open-files.js';
import { UdpRelayEngine } from '../../core/relay/engine.js';
import { SessionRegistrar } from '../../core/session-registrar.js';
import type { Front, FrontDeps } from '../front.js';
import { ControlServer } from './control-server.js';
import { NorayCommands, type HostSession } from './handlers.js';
import { createNorayMetrics, registerRelayMetrics, type NorayLimitReason } from './metrics.js';
import { RegistrarSocket } from './registrar-socket.js';
import { relayBindingOutcome } from './relay-ports.js';

/** Unsent reply bytes a control connection may pile up before it is dropped. */
const MAX_PENDING_REPLY_BYTES = 64 * 1024;

/** The noray front: TCP control channel, UDP registrar and UDP relay (foxssake/noray compatible). */
export class NorayFront implements Front {
  readonly name = 'noray';
  readonly sessions = new MemorySessionStore<HostSession>();
  readonly addresses = new MemoryAddressBook();
  private readonly delivery = new LocalDelivery<string>();
  private readonly ownEndpoints = new OwnEndpoints();
  private readonly commands: NorayCommands;
  readonly relay: UdpRelayEngine | null;
  /** How many relay ports to bind under the open-file limit; null when relaying is off. */
  private readonly relayBudget: RelayPortBudget | null;
  private readonly control: ControlServer | null;
  private readonly registrarSocket: RegistrarSocket | null;
  private readonly deps: FrontDeps;

  constructor(deps: FrontDeps) {
    this.deps = deps;
    const { config, clock } = deps;
    const logger = deps.logger.child({ front: 'noray' });
    const metrics = createNorayMetrics(deps.metrics);
    const limits = deps.limits.forFront<NorayLimitReason>('noray');
    const addressPolicy = new AddressPolicy(config.denyPrivatePeers);
    this.relayBudget =
      config.udpRelayPorts === null ? null : relayPortBudget(config.udpRelayPorts.length, readOpenFileLimit());
    this.relay =
      config.udpRelayPorts === null || this.relayBudget === null
        ? null
        : new UdpRelayEngine({
            host: config.udpHost,
            // Within the open-file budget: the ports past it would take descriptors connections need.
            ports: config.udpRelayPorts.slice(0, this.relayBudget.bind),
            clock,
            idleTimeoutMs: config.udpRelayTimeout,
            cleanupIntervalMs: config.udpRelayCleanupInterval,
            maxIndividualBytesPerSecond: config.udpRelayMaxIndividualTraffic,
            maxGlobalBytesPerSecond: config.udpRelayMaxGlobalTraffic,
            trafficIntervalMs: config.udpRelayTrafficInterval,
            maxLifetimeMs: config.udpRelayMaxLifetimeDuration,
            maxLifetimeBytes: config.udpRelayMaxLifetimeTraffic,
            socketBufferBytes: config.udpRelaySocketBuffer,
            relearnAfterMs: config.udpRelayRelearnAfter,
          });
    if (this.relay) registerRelayMetrics(deps.metrics, this.relay);
    const commands = (this.commands = new NorayCommands({
      sessions: this.sessions,
      addresses: this.addresses,
      delivery: this.delivery,
      relay: this.relay,
      newOid: randomIdGenerator(config.oidCharset, config.oidLength),
      newPid: randomIdGenerator(config.pidCharset, config.pidLength),
      newSessionId: randomToken,
      logger,
      metrics,
      maxSessions: config.maxSessions,
      limits,
      addressPolicy,
    }));
    this.control =
      config.socketPort === null
        ? null
        : new ControlServer({
            host: config.socketHost,
            port: config.socketPort,
            maxLineLength: config.socketMaxLineLength,
            maxPendingBytes: MAX_PENDING_REPLY_BYTES,
            commands,
            delivery: this.delivery,
            metrics,
            logger,
            clock,
            limits,
            maxConnections: config.maxConnections,
            maxConnectionsPerIp: config.maxConnectionsPerIp,
            messageRate: config.messageRate,
            messageBurst: config.messageBurst,
            loginTimeoutMs: config.loginTimeout,
          });
    this.registrarSocket =
      config.udpRegistrarPort === null
        ? null
        : new RegistrarSocket({
            host: config.udpHost,
            port: config.udpRegistrarPort,
            pidLength: config.pidLength,
            pidCharset: config.pidCharset,
            replyRate: config.udpRegistrarReplyRate,
            replyBurst: config.udpRegistrarReplyBurst,
            clock,
            isOwnEndpoint: (address, port) => this.ownEndpoints.has(address, port),
            registrar: new SessionRegistrar(this.sessions, this.addresses),
            metrics,
            logger,
            addressPolicy,
            limits,
            onMoved: (from, to) => this.relay?.move(from, to),
          });
  }

  /**
   * UDP first, TCP last: by the time a client can register, every port it may be told of is
   * bound. Relay ports: as many as the open-file limit leaves room for (core/open-files.ts), and
   * at least NORAY_UDP_RELAY_MIN_PORTS (one by default), or the start fails.
   */
  async start(): Promise<void> {
    const { config } = this.deps;
    const logger = this.deps.logger.child({ front: 'noray' });
    if (this.relay && this.relayBudget && config.udpRelayPorts) {
      const started = Date.now();
      const failures = await this.relay.start();
      const bound = this.relay.stats.boundPorts;
      const outcome = relayBindingOutcome({
        configuredPorts: config.udpRelayPorts,
        budget: this.relayBudget,
        bound,
        failures,
        minPorts: config.udpRelayMinPorts,
      });
      if (outcome.kind === 'fatal') throw new Error(outcome.message);
      if (outcome.kind === 'partial') logger.warn(outcome.fields, outcome.message);
      const configured = this.relayBudget.configured;
      logger.info({ relayPorts: bound, configured, ms: Date.now() - started }, 'relay ports bound');
    }
    try {
      await this.registrarSocket?.bind();
      if (this.registrarSocket) this.ownEndpoints.add([this.registrarSocket.port]);
      if (this.relay) this.ownEndpoints.add(this.relay.boundPorts);
      await this.control?.listen();
    } catch (error) {
      if (!isDescriptorExhaustion(error)) throw error;
      const advice = openFileAdvice(this.relayBudget?.configured ?? 0);
      const hinted = new Error(`${error.message}: out of file descriptors; ${advice}`, { cause: error });
      throw Object.assign(hinted, { code: error.code });
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.control?.close(), this.registrarSocket?.close(), this.relay?.stop()]);
  }

  ports(): Record<string, number | number[]> {
    const ports: Record<string, number | number[]> = {};
    if (this.control) ports.control = this.control.port;
    if (this.registrarSocket) ports.registrar = this.registrarSocket.port;
    if (this.relay) ports.relay = this.relay.boundPorts;
    return ports;
  }

  stats(): Record<string, number> {
    return {
      connections: this.control?.connections ?? 0,
      hosts: this.commands.sessionCount,
      registeredAddresses: this.addresses.size,
      relays: this.relay?.stats.relays ?? 0,
      relayPortsFree: this.relay?.stats.freePorts ?? 0,
      relayPortsBound: this.relay?.stats.boundPorts ?? 0,
      relayPortsConfigured: this.relayBudget?.configured ?? 0,
    };
  }
}

export function createNorayFront(deps: FrontDeps): NorayFront {
  return new NorayFront(deps);
}
