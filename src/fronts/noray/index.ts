import { AddressPolicy } from '../../core/address-policy.js';
import { MemoryAddressBook, type AddressBook } from '../../core/address-book.js';
import type { AttachableDelivery } from '../../core/delivery.js';
import { interfaceAddresses, OwnEndpoints } from '../../core/own-endpoints.js';
import type { SessionStore } from '../../core/directory.js';
import { jsonMessageCodec, TEXT_CODEC } from '../../core/codecs.js';
import { randomIdGenerator, randomToken } from '../../core/ids.js';
import { isDescriptorExhaustion, openFileAdvice, readOpenFileLimit, relayPortBudget, type RelayPortBudget } from '../../core/open-files.js';
import type { RelayEngine } from '../../core/relay/engine.js';
import { createRelayEngine, type SelectedRelayEngine } from '../../core/relay/select.js';
import { SessionRegistrar } from '../../core/session-registrar.js';
import type { Config, ConfigKey } from '../../config/schema.js';
import type { Front, FrontDeps } from '../front.js';
import { createSourceThrottle } from '../shared/read-throttle.js';
import { ControlServer } from './control-server.js';
import { NorayInspection } from './inspection.js';
import { NorayCommands, type HostSession } from './handlers.js';
import { createNorayMetrics, registerRelayMetrics, type NorayLimitReason } from './metrics.js';
import { RegistrarSocket } from './registrar-socket.js';
import { relayBindingOutcome } from './relay-ports.js';
import { RelayBridge, type BridgeMessage } from './relay-bridge.js';
import { StunResponder } from './stun-responder.js';
import { StunSocket } from './stun-socket.js';

/** Unsent reply bytes a control connection may pile up before it is dropped. */
const MAX_PENDING_REPLY_BYTES = 64 * 1024;

/** The noray front: TCP control channel, UDP registrar and UDP relay (foxssake/noray compatible). */
export class NorayFront implements Front {
  readonly name = 'noray';
  readonly sessions: SessionStore<HostSession>;
  readonly addresses: AddressBook;
  private readonly delivery: AttachableDelivery<string>;
  private readonly ownEndpoints: OwnEndpoints;
  private readonly commands: NorayCommands;
  readonly relay: RelayEngine | null;
  /** Which relay engine runs, and why not native under `auto`; logged at start. */
  private readonly relayEngine: SelectedRelayEngine | null;
  /** Relays to hosts on other nodes of a cluster; null alone or with relaying off. */
  private readonly bridge: RelayBridge | null;
  /** How many relay ports to bind under the open-file limit; null when relaying is off. */
  private readonly relayBudget: RelayPortBudget | null;
  private readonly control: ControlServer | null;
  private readonly registrarSocket: RegistrarSocket | null;
  private readonly stunSocket: StunSocket | null;
  private readonly deps: NorayDeps;
  private readonly options: NorayOptions;
  readonly inspection: NorayInspection | undefined;

  constructor(deps: NorayDeps, options: NorayOptions) {
    this.deps = deps;
    this.options = options;
    this.ownEndpoints = new OwnEndpoints(interfaceAddresses(), options.udpHost);
    const { clock, state } = deps;
    this.sessions = state.sessions<HostSession>('noray');
    this.addresses = state.addressBook('noray');
    // A dead node's hosts are gone: their OpenIDs and addresses are freed cluster-wide.
    state.onNodeGone(async (node) => {
      await Promise.all([this.sessions.purgeNode?.(node), this.addresses.purgeNode?.(node)]);
    });
    this.delivery = state.delivery('noray', TEXT_CODEC);
    const logger = deps.logger.child({ front: 'noray' });
    const metrics = createNorayMetrics(deps.metrics);
    const limits = deps.limits.forFront<NorayLimitReason>('noray');
    const addressPolicy = new AddressPolicy(options.denyPrivatePeers);
    this.relayBudget =
      options.udpRelayPorts === null ? null : relayPortBudget(options.udpRelayPorts.length, readOpenFileLimit());
    this.relayEngine =
      options.udpRelayPorts === null || this.relayBudget === null
        ? null
        : createRelayEngine(options.udpRelayEngine, {
            host: options.udpHost,
            // Within the open-file budget: the ports past it would take descriptors connections need.
            ports: options.udpRelayPorts.slice(0, this.relayBudget.bind),
            clock,
            idleTimeoutMs: options.udpRelayTimeout,
            cleanupIntervalMs: options.udpRelayCleanupInterval,
            maxIndividualBytesPerSecond: options.udpRelayMaxIndividualTraffic,
            maxGlobalBytesPerSecond: options.udpRelayMaxGlobalTraffic,
            trafficIntervalMs: options.udpRelayTrafficInterval,
            maxLifetimeMs: options.udpRelayMaxLifetimeDuration,
            maxLifetimeBytes: options.udpRelayMaxLifetimeTraffic,
            socketBufferBytes: options.udpRelaySocketBuffer,
            relearnAfterMs: options.udpRelayRelearnAfter,
            maxPerSource: options.udpRelayMaxPerSource,
            maxPerSession: options.udpRelayMaxPerSession,
          });
    this.relay = this.relayEngine?.engine ?? null;
    if (this.relay) registerRelayMetrics(deps.metrics, this.relay);
    this.bridge =
      state.clustered && this.relay !== null
        ? new RelayBridge({
            nodeId: state.nodeId,
            nodeAddress: state.nodeAddress ?? options.udpHost,
            relay: this.relay,
            sessions: this.sessions,
            addresses: this.addresses,
            lines: this.delivery,
            messages: state.delivery('noray-bridge', jsonMessageCodec<BridgeMessage>()),
            clock,
          })
        : null;
    const commands = (this.commands = new NorayCommands({
      sessions: this.sessions,
      addresses: this.addresses,
      delivery: this.delivery,
      relay: this.relay,
      newOid: randomIdGenerator(options.oidCharset, options.oidLength),
      newPid: randomIdGenerator(options.pidCharset, options.pidLength),
      newSessionId: randomToken,
      logger,
      metrics,
      maxSessions: options.maxSessions,
      limits,
      addressPolicy,
      clock,
      abuse: {
        oidReservationMs: options.oidReservation,
        connectRate: options.connectRate,
        connectBurst: options.connectBurst,
        connectHostRate: options.connectHostRate,
        connectHostBurst: options.connectHostBurst,
        connectCoalesceMs: options.connectCoalesce,
        unknownOidRate: options.unknownOidRate,
        unknownOidBurst: options.unknownOidBurst,
      },
      ...(state.clustered ? { cluster: { nodeId: state.nodeId, bridge: this.bridge } } : {}),
    }));
    this.control =
      options.socketPort === null
        ? null
        : new ControlServer({
            host: options.socketHost,
            port: options.socketPort,
            maxLineLength: options.socketMaxLineLength,
            maxPendingBytes: MAX_PENDING_REPLY_BYTES,
            commands,
            delivery: this.delivery,
            newConnectionId: () => state.newConnectionId(),
            metrics,
            logger,
            clock,
            limits,
            maxConnections: options.maxConnections,
            maxConnectionsPerIp: options.maxConnectionsPerIp,
            messageRate: options.messageRate,
            messageBurst: options.messageBurst,
            loginTimeoutMs: options.loginTimeout,
            throttle: createSourceThrottle(options, clock),
          });
    // One responder for both STUN ports: its per-source answer budget covers the two together.
    const stun = new StunResponder({
      replyRate: options.udpRegistrarReplyRate,
      replyBurst: options.udpRegistrarReplyBurst,
      clock,
      addressPolicy,
      metrics,
      limits,
    });
    const isOwnEndpoint = (address: string, port: number) => this.ownEndpoints.has(address, port);
    this.stunSocket =
      options.stunAltPort === null
        ? null
        : new StunSocket({ host: options.udpHost, port: options.stunAltPort, responder: stun, isOwnEndpoint, metrics, limits, logger });
    this.inspection = this.control ? new NorayInspection(commands, this.addresses, this.relay, this.control, clock) : undefined;
    this.registrarSocket =
      options.udpRegistrarPort === null
        ? null
        : new RegistrarSocket({
            host: options.udpHost,
            port: options.udpRegistrarPort,
            pidLength: options.pidLength,
            pidCharset: options.pidCharset,
            replyRate: options.udpRegistrarReplyRate,
            replyBurst: options.udpRegistrarReplyBurst,
            clock,
            isOwnEndpoint,
            registrar: new SessionRegistrar(this.sessions, this.addresses),
            metrics,
            logger,
            addressPolicy,
            limits,
            onMoved: (from, to) => this.relay?.move(from, to),
            stun,
          });
  }

  /**
   * UDP first, TCP last: by the time a client can register, every port it may be told of is
   * bound. Relay ports: as many as the open-file limit leaves room for (core/open-files.ts), and
   * at least NORAY_UDP_RELAY_MIN_PORTS (one by default), or the start fails.
   */
  async start(): Promise<void> {
    const { options } = this;
    const logger = this.deps.logger.child({ front: 'noray' });
    if (this.relay && this.relayBudget && options.udpRelayPorts) {
      const started = Date.now();
      const failures = await this.relay.start();
      const bound = this.relay.stats.boundPorts;
      const outcome = relayBindingOutcome({
        configuredPorts: options.udpRelayPorts,
        budget: this.relayBudget,
        bound,
        failures,
        minPorts: options.udpRelayMinPorts,
      });
      if (outcome.kind === 'fatal') throw new Error(outcome.message);
      if (outcome.kind === 'partial') logger.warn(outcome.fields, outcome.message);
      const configured = this.relayBudget.configured;
      const engine = this.relayEngine?.kind;
      logger.info({ relayPorts: bound, configured, engine, ms: Date.now() - started }, 'relay ports bound');
      if (this.relayEngine?.fallback) logger.info({ engine, reason: this.relayEngine.fallback }, 'NORAY_UDP_RELAY_ENGINE=auto: relaying with the js engine');
    }
    try {
      await this.registrarSocket?.bind();
      if (this.registrarSocket) this.ownEndpoints.add([this.registrarSocket.port]);
      await this.stunSocket?.bind();
      if (this.stunSocket) this.ownEndpoints.add([this.stunSocket.port]);
      if (this.relay) this.ownEndpoints.add(this.relay.boundPorts);
      this.bridge?.start();
      await this.control?.listen();
    } catch (error) {
      if (!isDescriptorExhaustion(error)) throw error;
      const advice = openFileAdvice(this.relayBudget?.configured ?? 0);
      const hinted = new Error(`${error.message}: out of file descriptors; ${advice}`, { cause: error });
      throw Object.assign(hinted, { code: error.code });
    }
  }

  async stop(): Promise<void> {
    this.bridge?.stop();
    await Promise.all([this.control?.close(), this.registrarSocket?.close(), this.stunSocket?.close(), this.relay?.stop()]);
  }

  ports(): Record<string, number | number[]> {
    const ports: Record<string, number | number[]> = {};
    if (this.control) ports.control = this.control.port;
    if (this.registrarSocket) ports.registrar = this.registrarSocket.port;
    if (this.stunSocket) ports.stunAlt = this.stunSocket.port;
    if (this.relay) ports.relay = this.relay.boundPorts;
    return ports;
  }

  stats(): Record<string, number> {
    return {
      connections: this.control?.connections ?? 0,
      hosts: this.commands.sessionCount,
      // Known here only when this process holds every address (no cluster).
      ...(this.addresses instanceof MemoryAddressBook ? { registeredAddresses: this.addresses.size } : {}),
      relays: this.relay?.stats.relays ?? 0,
      relayPortsFree: this.relay?.stats.freePorts ?? 0,
      relayPortsBound: this.relay?.stats.boundPorts ?? 0,
      relayPortsConfigured: this.relayBudget?.configured ?? 0,
    };
  }
}

/** The config keys the noray front reads. */
const NORAY_OPTION_KEYS = [
  'connectBurst',
  'connectCoalesce',
  'connectHostBurst',
  'connectHostRate',
  'connectRate',
  'oidReservation',
  'unknownOidBurst',
  'unknownOidRate',
  'denyPrivatePeers',
  'loginTimeout',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxSessions',
  'messageBurst',
  'messageRate',
  'oidCharset',
  'oidLength',
  'pidCharset',
  'pidLength',
  'socketHost',
  'socketMaxLineLength',
  'socketPort',
  'stunAltPort',
  'sourceByteBurst',
  'sourceByteRate',
  'sourceMessageBurst',
  'sourceMessageRate',
  'udpHost',
  'udpRegistrarPort',
  'udpRegistrarReplyBurst',
  'udpRegistrarReplyRate',
  'udpRelayCleanupInterval',
  'udpRelayEngine',
  'udpRelayMaxGlobalTraffic',
  'udpRelayMaxIndividualTraffic',
  'udpRelayMaxLifetimeDuration',
  'udpRelayMaxLifetimeTraffic',
  'udpRelayMinPorts',
  'udpRelayPorts',
  'udpRelayRelearnAfter',
  'udpRelayMaxPerSource',
  'udpRelayMaxPerSession',
  'udpRelaySocketBuffer',
  'udpRelayTimeout',
  'udpRelayTrafficInterval',
] as const satisfies readonly ConfigKey[];

/** What the noray front is configured with: its own slice of the config. */
export type NorayOptions = Pick<Config, (typeof NORAY_OPTION_KEYS)[number]>;

/** What the noray front is built with, besides its options. */
export type NorayDeps = Omit<FrontDeps, 'config'>;

/** The one place the noray front reads the config. */
export function norayOptions(config: Config): NorayOptions {
  return Object.fromEntries(NORAY_OPTION_KEYS.map((key) => [key, config[key]])) as NorayOptions;
}

export function createNorayFront({ config, ...deps }: FrontDeps): NorayFront {
  return new NorayFront(deps, norayOptions(config));
}
