import { randomBytes, randomUUID } from 'node:crypto';

/** Makes ids of `length` characters from `alphabet` with a cryptographically secure source, unbiased. */
export function randomIdGenerator(alphabet: string, length: number): () => string {
  const chars = [...alphabet];
  if (chars.length < 2 || chars.length > 256) throw new RangeError('alphabet needs 2..256 characters');
  // Rejection sampling: use only bytes below the largest multiple of the alphabet size.
  const limit = 256 - (256 % chars.length);
  return () => {
    // Count characters, not UTF-16 units: an alphabet may hold characters outside the BMP.
    let id = '';
    let count = 0;
    while (count < length) {
      const bytes = randomBytes(Math.ceil((length - count) * 1.6) + 8);
      for (let i = 0; i < bytes.length && count < length; i++) {
        const byte = bytes[i] as number;
        if (byte < limit) {
          id += chars[byte % chars.length];
          count++;
        }
      }
    }
    return id;
  };
}

/** A random UUID (v4), for tokens. */
export function randomToken(): string {
  return randomUUID();
}

/** Shows the start of a secret in logs, never the whole. */
export function maskSecret(secret: string): string {
  return secret.length <= 6 ? '***' : `${secret.slice(0, 4)}…(${secret.length})`;
}
