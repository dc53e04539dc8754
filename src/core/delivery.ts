/**
 * Delivery of messages to a connection by id, wherever it is connected. Stored records hold such
 * ids, never sockets or closures, so a record can live in a shared store and still be reached.
 * Messages from one sender to one recipient arrive in the order they were delivered.
 */
export interface Delivery<M> {
  /** Puts a message on the recipient's connection; false when no such recipient is connected. */
  deliver(recipient: string, message: M): boolean;
}

/** A connection's receiving end, as the socket glue attaches it. */
export type Inbox<M> = (message: M) => void;

/** A delivery that connections of this process attach to under their id. */
export interface AttachableDelivery<M> extends Delivery<M> {
  attach(recipient: string, inbox: Inbox<M>): void;
  detach(recipient: string, inbox: Inbox<M>): void;
}

/** Delivery within one process: recipients are the connections attached here. */
export class LocalDelivery<M> implements AttachableDelivery<M> {
  private readonly inboxes = new Map<string, Inbox<M>>();

  /** Makes `recipient` reachable; replaces an earlier inbox under the same id. */
  attach(recipient: string, inbox: Inbox<M>): void {
    this.inboxes.set(recipient, inbox);
  }

  /** Removes the recipient only if `inbox` is still the one attached under its id. */
  detach(recipient: string, inbox: Inbox<M>): void {
    if (this.inboxes.get(recipient) === inbox) this.inboxes.delete(recipient);
  }

  deliver(recipient: string, message: M): boolean {
    const inbox = this.inboxes.get(recipient);
    if (inbox === undefined) return false;
    inbox(message);
    return true;
  }

  /** Whether a recipient is attached. */
  has(recipient: string): boolean {
    return this.inboxes.has(recipient);
  }

  get size(): number {
    return this.inboxes.size;
  }
}

/** How a delivered message crosses processes (a cluster's delivery). */
export interface MessageCodec<M> {
  encode(message: M): Buffer;
  decode(bytes: Buffer): M;
}
