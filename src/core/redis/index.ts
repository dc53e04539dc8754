// The Redis implementations of the store seams, for several noray processes sharing one Redis.
// Each takes a connected node-redis client and a key prefix (with a hash tag, e.g.
// `noray:{cluster}:`); nothing here connects, and nothing is shared between instances.
export { RedisAddressBook } from './address-book.js';
export { RedisLobbyStore } from './lobby-store.js';
export { RedisRoomStore, type PurgedRooms } from './room-store.js';
export { jsonCodec, RedisSessionStore, type Codec, type RedisSessionStoreOptions } from './session-store.js';
export { LuaScript, type RedisClient, type RedisStoreOptions } from './script.js';
export {
  decodeFrame,
  deliveryChannel,
  encodeFrame,
  NODE_ID_PATTERN,
  nodeOf,
  RedisDelivery,
  type RedisDeliveryOptions,
} from './delivery.js';
export {
  ClusterMembership,
  type ClusterMembershipOptions,
  type NodeDeadListener,
  type NodeInfo,
  type RejoinedListener,
} from './membership.js';
