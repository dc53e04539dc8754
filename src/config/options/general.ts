import { option } from '../option.js';
import { parseEnum, parseHost, parseOptionalPort } from '../units.js';

export const LOG_LEVELS = ['silent', 'trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
};
