// `noray doctor [HOST] [options]`: arguments, the run, the output. The probes and the verdict
// are in probes.ts and report.ts.
import { parseArgs } from 'node:util';
import { ConfigValueError, parseDuration, parseInteger, parseOptionalPort, parsePort, parsePortList } from '../config/units.js';
import { diagnose, type DoctorOptions } from './probes.js';
import { buildReport, formatReport, portList } from './report.js';

/** Wrong arguments: the same exit code as a bad server option. */
export const EXIT_USAGE = 2;

export const DOCTOR_HELP = `Usage: noray doctor [HOST] [options]

Checks, from this machine, what players need from the noray server at HOST (default 127.0.0.1):
the TCP control port (register-host), the UDP registrar (OK, and the external address it sees),
this network's NAT mapping (STUN from the registrar port and NORAY_STUN_ALT_PORT: symmetric or
not), and a relay round trip through the server (the doctor plays host and clients itself),
sampling several relay ports. It prints what it found and a verdict.

Options:
  --port PORT            TCP control port (default 8890)
  --registrar-port PORT  UDP registrar port (default 8809)
  --stun-port PORT|off   the server's NORAY_STUN_ALT_PORT (default 3478); off: do not test the mapping
  --relay-ports PORTS    the server's NORAY_UDP_RELAY_PORTS, named in advice (default 49152-51200)
  --relay-clients N      relay clients to play, each samples one more relay port (default 4)
  --timeout DURATION     how long each step waits for an answer (default 3s)
  --json                 print the report as JSON
  -h, --help             this text

Exit codes: 0 no problem found; 1 a problem (the verdict says which and what to open or change);
3 works, but only through the relay (this network's NAT is symmetric: punchthrough will fail);
2 wrong arguments.`;

interface Output {
  write(text: string): void;
}

function parsed(argv: readonly string[]): { options: DoctorOptions; json: boolean } | { help: true } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      'registrar-port': { type: 'string' },
      'stun-port': { type: 'string' },
      'relay-ports': { type: 'string' },
      'relay-clients': { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  if (positionals.length > 1) throw new ConfigValueError(`one HOST only, got ${positionals.join(' ')}`);
  const option = <T>(name: string, raw: string | undefined, fallback: string, parse: (raw: string) => T): T => {
    try {
      return parse(raw ?? fallback);
    } catch (error) {
      throw new ConfigValueError(`--${name}: ${(error as Error).message}`);
    }
  };
  return {
    json: values.json === true,
    options: {
      host: positionals[0] ?? '127.0.0.1',
      controlPort: option('port', values.port, '8890', parsePort),
      registrarPort: option('registrar-port', values['registrar-port'], '8809', parsePort),
      stunPort: option('stun-port', values['stun-port'], '3478', parseOptionalPort),
      relayRange: portList(option('relay-ports', values['relay-ports'], '49152-51200', parsePortList)),
      relayClients: option('relay-clients', values['relay-clients'], '4', (raw) => parseInteger(raw, 1, 16)),
      timeoutMs: option('timeout', values.timeout, '3s', parseDuration),
    },
  };
}

/** Runs the doctor; resolves with the exit code. */
export async function runDoctor(argv: readonly string[], out: Output = process.stdout, err: Output = process.stderr): Promise<number> {
  let request: ReturnType<typeof parsed>;
  try {
    request = parsed(argv);
  } catch (error) {
    err.write(`noray doctor: ${(error as Error).message}\n\n${DOCTOR_HELP}\n`);
    return EXIT_USAGE;
  }
  if ('help' in request) {
    out.write(`${DOCTOR_HELP}\n`);
    return 0;
  }
  const report = buildReport(await diagnose(request.options));
  out.write(request.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.exitCode;
}
