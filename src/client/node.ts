// noray/client/node: everything in noray/client plus the parts that need Node's sockets.
export * from './index.js';
export { encodeStatus, handshake, hostHandshake, parseStatus, type HandshakeOptions, type HandshakeStatus } from './handshake.js';
export { mediateOverUdp, type MediationUdp, type MediationUdpOptions } from './lobby-udp.js';
export {
  NorayClient,
  parseAddress,
  RegisterRemoteError,
  type Address,
  type NorayClientOptions,
  type NorayEvents,
  type RegisterRemoteOptions,
} from './noray.js';
export { TcpRelayClient, type RelayedMessage, type TcpRelayEvents, type TcpRelayOptions } from './tcprelay.js';
