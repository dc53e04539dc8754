import { option } from '../option.js';
import { ConfigValueError, parseEnum, parseHost, parseOptionalPort } from '../units.js';

export const LOG_LEVELS = ['silent', 'trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Shortest NORAY_OPS_TOKEN accepted: a short bearer token on an open port can be guessed. */
export const MIN_OPS_TOKEN_LENGTH = 16;

/**
 * NORAY_OPS_TOKEN: unset (empty) means the ops port answers everyone, as it always has. A token
 * is what a client sends in `Authorization: Bearer TOKEN`, so it must be header-safe visible
 * ASCII without spaces; the message never repeats the value (it is a secret).
 */
export function parseOpsToken(raw: string): string | null {
  const value = raw.trim();
  if (value === '') return null;
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new ConfigValueError('an ops token may only hold visible ASCII characters, no spaces');
  }
  if (value.length < MIN_OPS_TOKEN_LENGTH) {
    throw new ConfigValueError(
      `an ops token needs at least ${MIN_OPS_TOKEN_LENGTH} characters (make one with: openssl rand -hex 32)`,
    );
  }
  return value;
}

/** NORAY_TLS_CERT / NORAY_TLS_KEY: a file path, or unset (empty) for plain HTTP and WS. */
export function parseOptionalPath(raw: string): string | null {
  const value = raw.trim();
  return value === '' ? null : value;
}

export const generalOptions = {
  logLevel: option({
    env: 'NORAY_LOGLEVEL',
    default: 'info',
    parse: parseEnum(LOG_LEVELS),
    describe: 'Log level: silent, trace, debug, info, warn, error, fatal',
  }),
  httpHost: option({
    env: 'NORAY_HTTP_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Listen address of the operations HTTP server (/metrics, /health)',
  }),
  httpPort: option({
    env: 'NORAY_HTTP_PORT',
    default: '8891',
    parse: parseOptionalPort,
    describe: 'Port of the operations HTTP server, or "off"',
  }),
  opsToken: option({
    env: 'NORAY_OPS_TOKEN',
    default: '',
    parse: parseOpsToken,
    describe: `Secret (${MIN_OPS_TOKEN_LENGTH}+ characters) the operations server requires as "Authorization: Bearer TOKEN" for /metrics and /health details; empty: open to all`,
    secret: true,
  }),
  tlsCert: option({
    env: 'NORAY_TLS_CERT',
    default: '',
    parse: parseOptionalPath,
    describe:
      'PEM certificate (chain) file: with NORAY_TLS_KEY, the lobby, wsrelay and ops ports speak HTTPS/WSS (SIGHUP rereads both files); empty: plain',
  }),
  tlsKey: option({
    env: 'NORAY_TLS_KEY',
    default: '',
    parse: parseOptionalPath,
    describe: 'PEM private key file of NORAY_TLS_CERT (both or neither)',
  }),
};
