// Game datagrams of the NAT lab: a stream is a seed; datagram N of a stream has a size from 1 to
// 1200 bytes and content both ends compute from (seed, N), so the receiver checks every byte and
// the order. Each datagram also carries its own sequence number and checksum where it has room:
//   byte 0         0x80 | (seq & 0x7f)   (never `$`, so it cannot pass for a handshake status)
//   bytes 1..4     seq, u32 big-endian    (datagrams of 5 bytes or more)
//   bytes 5..8     CRC-32 of bytes 9..    (datagrams of 9 bytes or more)
//   bytes 9..      pseudo-random filler

export const MAX_PAYLOAD = 1200;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** mulberry32: small, fast, good enough to make payloads nobody could confuse. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Datagram `seq` of stream `seed`. */
export function datagram(seed: number, seq: number): Buffer {
  const next = generator((seed ^ Math.imul(seq + 1, 0x9e3779b1)) >>> 0);
  const size = 1 + (next() % MAX_PAYLOAD);
  const out = Buffer.alloc(size);
  out[0] = 0x80 | (seq & 0x7f);
  if (size >= 5) out.writeUInt32BE(seq >>> 0, 1);
  for (let i = 9; i < size; i += 4) {
    const word = next();
    for (let b = 0; b < 4 && i + b < size; b++) out[i + b] = (word >>> (8 * b)) & 0xff;
  }
  if (size >= 9) out.writeUInt32BE(crc32(out.subarray(9)), 5);
  return out;
}

/** A handshake status of PacketHandshake (`$-w-`, `$rw-`, `$rwx`, ...), not game data. */
export function isHandshakeStatus(message: Buffer): boolean {
  return message.length === 4 && message[0] === 0x24;
}

/** What the datagram says about itself: its sequence number and whether its checksum holds. */
export function inspect(message: Buffer): { seq: number | null; checksumOk: boolean | null } {
  const seq = message.length >= 5 ? message.readUInt32BE(1) : null;
  const checksumOk = message.length >= 9 ? message.readUInt32BE(5) === crc32(message.subarray(9)) : null;
  return { seq, checksumOk };
}

export interface StreamCheck {
  /** Datagrams received from that source (game data only). */
  received: number;
  /** Leading datagrams equal, byte for byte and in order, to datagrams 0, 1, 2, ... of the stream. */
  intactInOrder: number;
  /** Index of the first datagram that is not the expected one, or -1. */
  firstMismatch: number;
  /** Datagrams whose own checksum does not hold. */
  badChecksums: number;
  /** Sequence numbers read from the first datagrams after the first mismatch (diagnostics). */
  seqsAfterMismatch: Array<number | null>;
}

export function checkStream(messages: readonly Buffer[], seed: number, count: number): StreamCheck {
  let intactInOrder = 0;
  let firstMismatch = -1;
  let badChecksums = 0;
  messages.forEach((message, index) => {
    if (inspect(message).checksumOk === false) badChecksums++;
    if (firstMismatch >= 0) return;
    if (index < count && message.equals(datagram(seed, index))) intactInOrder++;
    else firstMismatch = index;
  });
  const seqsAfterMismatch = firstMismatch < 0 ? [] : messages.slice(firstMismatch, firstMismatch + 5).map((m) => inspect(m).seq);
  return { received: messages.length, intactInOrder, firstMismatch, badChecksums, seqsAfterMismatch };
}
