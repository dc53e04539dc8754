import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/options/general.js';

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'noray' },
      // Secrets are masked where they are logged; this catches any that slip into a log object.
      redact: { paths: ['pid', 'token', '*.pid', '*.token', 'secret', '*.secret'], censor: '<redacted>' },
    },
    // Synchronous stdout: log lines keep their order and none is lost when the process exits.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
