// Message codecs for deliveries that cross processes (see MessageCodec).
import type { MessageCodec } from './delivery.js';

/** Text lines and frames, as UTF-8. */
export const TEXT_CODEC: MessageCodec<string> = {
  encode: (message) => Buffer.from(message, 'utf8'),
  decode: (bytes) => bytes.toString('utf8'),
};

/** Bytes as they are. */
export const BYTES_CODEC: MessageCodec<Buffer> = {
  encode: (message) => message,
  decode: (bytes) => bytes,
};

/** Plain-data messages as JSON. */
export function jsonMessageCodec<M>(): MessageCodec<M> {
  return {
    encode: (message) => Buffer.from(JSON.stringify(message), 'utf8'),
    decode: (bytes) => JSON.parse(bytes.toString('utf8')) as M,
  };
}
