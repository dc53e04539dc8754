#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { App, tlsConfigured } from '../app.js';
import { ConfigError, helpText, parseCli, readEnvFile, resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { runDoctor } from '../doctor/cli.js';
import { createLogger } from '../ops/logger.js';
import { reportReady, runPrimary, workerConfig, workerProblems, workerSeat } from '../workers.js';

const SHUTDOWN_DEADLINE_MS = 5000;
const PARENT_CHECK_MS = 1000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(): Promise<number> {
  // `noray doctor ...`: a client of a noray server, not a server.
  if (process.argv[2] === 'doctor') return runDoctor(process.argv.slice(3));
  let app: App;
  try {
    const cli = parseCli(process.argv.slice(2));
    if (cli.help) {
      process.stdout.write(`${helpText()}\n`);
      return 0;
    }
    if (cli.version) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    const { config } = resolveConfig({
      flags: cli.flags,
      env: process.env,
      envFile: readEnvFile(cli.envFile, process.cwd()),
    });
    refuseNothingToRun(config);
    const seat = workerSeat();
    if (seat === null && config.workers > 1) {
      const problems = workerProblems(config);
      if (problems.length > 0) throw new ConfigError(problems.join('; '));
      tlsConfigured(config);
      // The primary of --workers N: forks and supervises, serves nothing itself.
      const logger = createLogger(config.logLevel).child({ role: 'primary' });
      // Orphaned under npm: stop as on SIGTERM (runPrimary's handler forwards it to the workers).
      watchWrapper(() => process.kill(process.pid, 'SIGTERM'));
      const code = await runPrimary({ config, logger });
      // Nothing is left to wait for once every worker exited; do not linger on cluster handles.
      logger.flush(() => process.exit(code));
      return -1;
    }
    app =
      seat === null
        ? new App({ config })
        : new App({
            config: workerConfig(config, seat),
            logger: createLogger(config.logLevel).child({ node: seat.nodeId, worker: seat.index }),
          });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`noray: ${error.message}\n`);
      return 2;
    }
    throw error;
  }

  let stopping = false;
  const shutdown = (why: { signal: NodeJS.Signals } | { reason: string; parent: number }) => {
    if (stopping) return;
    stopping = true;
    app.logger.info(why, 'shutting down');
    const deadline = setTimeout(() => {
      app.logger.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    // pino writes asynchronously: exit only once the last lines ("noray stopped") are out.
    const exit = (code: number) => app.logger.flush(() => process.exit(code));
    app.stop().then(
      () => exit(0),
      (error: unknown) => {
        app.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => shutdown({ signal }));
  // SIGHUP: with TLS, reread the certificate and key (open connections stay); without, stop as
  // always (the terminal closed).
  process.on('SIGHUP', () => {
    if (!app.tlsEnabled) shutdown({ signal: 'SIGHUP' });
    else if (!stopping) app.reloadTls();
  });
  watchWrapper((parent) => shutdown({ reason: 'parent exited', parent }));

  try {
    await app.start();
    reportReady();
  } catch (error) {
    app.logger.fatal({ err: error }, 'could not start');
    return 1;
  }
  return -1; // keep running until a signal
}

/** Every front and the ops server off: the server would report ready and exit at once, serving nothing. */
function refuseNothingToRun(config: Config): void {
  const switches = {
    NORAY_SOCKET_PORT: config.socketPort,
    NORAY_LOBBY_HTTP_PORT: config.lobbyHttpPort,
    NORAY_WSRELAY_PORT: config.wsrelayPort,
    NORAY_TCPRELAY_PORT: config.tcprelayPort,
    NORAY_HTTP_PORT: config.httpPort,
  };
  if (Object.values(switches).some((port) => port !== null)) return;
  throw new ConfigError(
    `nothing to run: every front and the ops server are off (${Object.keys(switches).join(', ')} are all "off"); ` +
      'give at least one a port',
  );
}

/**
 * `npm start` and `npx noray` run the bin through a shell (npm -> sh -> node). A SIGTERM to npm
 * kills npm and the shell but never reaches node, which would keep running as an orphan holding
 * every port. So when npm started us, notice our parent going away and stop as on SIGTERM.
 * Run directly (the bin, systemd, a container), nothing is watched: signals arrive as sent.
 */
function watchWrapper(onOrphaned: (parent: number) => void): void {
  if (process.env.npm_lifecycle_event === undefined && process.env.npm_command === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned(parent);
  }, PARENT_CHECK_MS);
  timer.unref();
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`noray: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
