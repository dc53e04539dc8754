// Delivery across the noray processes of a cluster, over Redis pub/sub.
//
// Recipient ids are `<nodeId>/<anything>`: the node part says which process holds the
// connection. A recipient attached to this process is reached directly (synchronously, nothing is
// encoded); one of another node is published to that node's channel, `${prefix}d:${space}:${node}`,
// which only that node subscribes to. Each node publishes over one connection (the shared command
// client) and Redis forwards a channel's messages in the order they were published, so messages
// from one sender node to one recipient arrive in the order deliver() was called: deliver()
// encodes and issues the PUBLISH synchronously, with nothing awaited in between.
//
// Pub/sub is fire-and-forget: a message published while its recipient is going away, or while the
// recipient's node is not subscribed (down, restarting, partitioned), is lost. Callers that need
// more wait for an answer of their own.
//
// Frame (binary, so any encoded message passes): uint32 BE byte length of the recipient id, the
// recipient id in UTF-8, then the encoded message.
import { LocalDelivery, type AttachableDelivery, type Inbox, type MessageCodec } from '../delivery.js';
import { NODE_ID_PATTERN, nodeOf } from '../shared-state.js';
import type { RedisClient } from './script.js';

export { NODE_ID_PATTERN, nodeOf } from '../shared-state.js';

/** The channel the node `nodeId` receives a space's deliveries on. */
export function deliveryChannel(prefix: string, space: string, nodeId: string): string {
  return `${prefix}d:${space}:${nodeId}`;
}

const HEADER = 4;

/** A frame for `recipient` carrying `payload` (exported for tests). */
export function encodeFrame(recipient: string, payload: Buffer): Buffer {
  const length = Buffer.byteLength(recipient, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER + length + payload.length);
  frame.writeUInt32BE(length, 0);
  frame.write(recipient, HEADER, length, 'utf8');
  payload.copy(frame, HEADER + length);
  return frame;
}

/** The recipient and payload of a frame, or undefined when it is malformed. */
export function decodeFrame(frame: Buffer): { recipient: string; payload: Buffer } | undefined {
  if (frame.length < HEADER) return undefined;
  const length = frame.readUInt32BE(0);
  if (length === 0 || length > frame.length - HEADER) return undefined;
  const recipient = frame.toString('utf8', HEADER, HEADER + length);
  return { recipient, payload: frame.subarray(HEADER + length) };
}

export interface RedisDeliveryOptions<M> {
  /** The shared command client: every PUBLISH of this node goes over it (one connection keeps order). */
  readonly publisher: RedisClient;
  /**
   * A dedicated client for subscriber mode (e.g. `publisher.duplicate()`), connected by the
   * caller; several RedisDelivery instances (spaces) may share it.
   */
  readonly subscriber: RedisClient;
  /** Key and channel prefix of the cluster, e.g. `noray:{c}:`. */
  readonly prefix: string;
  /** Which delivery of the node this is (e.g. `wsrelay`): one channel per space and node. */
  readonly space: string;
  /** This node's id: recipients `<nodeId>/...` are attached here. */
  readonly nodeId: string;
  readonly codec: MessageCodec<M>;
  /** Whether a node is alive (e.g. ClusterMembership.isAlive); deliveries to a dead node return false. */
  readonly nodeAlive?: (nodeId: string) => boolean;
  /** Publish, subscribe and inbox failures (never thrown from deliver() or the subscription). */
  readonly onError: (error: Error) => void;
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** Delivery within a cluster: local inboxes, and Redis pub/sub to the other nodes. */
export class RedisDelivery<M> implements AttachableDelivery<M> {
  /** This node's recipients. */
  private readonly local = new LocalDelivery<M>();
  private readonly channel: string;
  private subscribed = false;
  private droppedCount = 0;
  private readonly listener = (frame: Buffer): void => this.receive(frame);

  constructor(private readonly options: RedisDeliveryOptions<M>) {
    if (!NODE_ID_PATTERN.test(options.nodeId)) {
      throw new Error(`RedisDelivery: node id ${JSON.stringify(options.nodeId)} does not match ${NODE_ID_PATTERN}`);
    }
    this.channel = deliveryChannel(options.prefix, options.space, options.nodeId);
  }

  /** Makes `recipient` reachable; replaces an earlier inbox under the same id. */
  attach(recipient: string, inbox: Inbox<M>): void {
    this.local.attach(recipient, inbox);
  }

  /** Removes the recipient only if `inbox` is still the one attached under its id. */
  detach(recipient: string, inbox: Inbox<M>): void {
    this.local.detach(recipient, inbox);
  }

  /**
   * Local recipient: handed over synchronously. Another node's: published, true unless that node
   * is known dead (true means sent, not received). This node's unattached ids, and ids without a
   * valid node part: false.
   */
  deliver(recipient: string, message: M): boolean {
    if (this.local.deliver(recipient, message)) return true;
    const node = nodeOf(recipient);
    if (node === undefined || node === this.options.nodeId) return false;
    if (this.options.nodeAlive !== undefined && !this.options.nodeAlive(node)) return false;
    let frame: Buffer;
    try {
      frame = encodeFrame(recipient, this.options.codec.encode(message));
    } catch (error) {
      this.options.onError(asError(error));
      return false;
    }
    // Issued synchronously: node-redis writes commands of one client in call order.
    try {
      this.options.publisher.publish(deliveryChannel(this.options.prefix, this.options.space, node), frame).catch((error: unknown) => this.options.onError(asError(error)));
    } catch (error) {
      this.options.onError(asError(error));
    }
    return true;
  }

  /** Subscribes to this node's channel (buffer mode); resolves once Redis confirmed it. */
  async start(): Promise<void> {
    if (this.subscribed) return;
    this.subscribed = true;
    try {
      await this.options.subscriber.subscribe(this.channel, this.listener, true);
    } catch (error) {
      this.subscribed = false;
      throw error;
    }
  }

  /** Unsubscribes this delivery's listener (other deliveries on the same subscriber keep theirs). */
  async stop(): Promise<void> {
    if (!this.subscribed) return;
    this.subscribed = false;
    await this.options.subscriber.unsubscribe(this.channel, this.listener, true);
  }

  /** Frames received for recipients no longer attached, and malformed ones. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Recipients attached here. */
  get size(): number {
    return this.local.size;
  }

  private receive(frame: Buffer): void {
    const parsed = decodeFrame(frame);
    if (parsed === undefined || !this.local.has(parsed.recipient)) {
      this.droppedCount++;
      return;
    }
    let message: M;
    try {
      message = this.options.codec.decode(parsed.payload);
    } catch {
      this.droppedCount++;
      return;
    }
    try {
      this.local.deliver(parsed.recipient, message);
    } catch (error) {
      this.options.onError(asError(error));
    }
  }
}
