// The doctor's TCP side of the noray protocol: `COMMAND DATA\n` out, lines in (split on \n).
import { connect, type Socket } from 'node:net';

/** Longest line the doctor keeps; the server's are short (ids, ports, error reasons). */
const MAX_LINE = 4096;

export interface Line {
  readonly command: string;
  readonly data: string;
}

/** Why a TCP connection could not be made, in words a person understands. */
/** Why the control channel could not be used, in words a person understands (`protocol`: not noray's answers). */
export type ConnectFailure = { readonly kind: 'refused' | 'timeout' | 'unreachable' | 'protocol' | 'other'; readonly message: string };

export class ControlConnection {
  private buffer = '';
  private readonly lines: Line[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.ingest(text));
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** Connects within timeoutMs, or rejects with a ConnectFailure. */
  static open(host: string, port: number, timeoutMs: number): Promise<ControlConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject({ kind: 'timeout', message: `no answer within ${timeoutMs} ms` } satisfies ConnectFailure);
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlConnection(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const kind = error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH' ? 'unreachable' : 'other';
        reject({ kind, message: error.code ?? error.message } satisfies ConnectFailure);
      });
    });
  }

  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }

  private ingest(text: string): void {
    this.buffer += text;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') continue;
      const space = line.indexOf(' ');
      this.lines.push(space < 0 ? { command: line, data: '' } : { command: line.slice(0, space), data: line.slice(space + 1) });
    }
    // Not a noray server: no line ending in sight.
    if (this.buffer.length > MAX_LINE) this.close();
    this.wake?.();
  }

  send(command: string, data?: string): void {
    this.socket.write(data === undefined ? `${command}\n` : `${command} ${data}\n`);
  }

  /** The next line whose command is one of `commands` or `error`; null on timeout or close. */
  async next(commands: readonly string[], timeoutMs: number): Promise<Line | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((line) => line.command === 'error' || commands.includes(line.command));
      if (index >= 0) return this.lines.splice(0, index + 1).at(-1) ?? null;
      const remaining = deadline - Date.now();
      if (this.closed || remaining <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** `register-host`: the OpenID and PrivateID, or the server's error / null on timeout. */
  async registerHost(timeoutMs: number): Promise<{ oid: string; pid: string } | { error: string }> {
    this.send('register-host');
    const oid = await this.next(['set-oid'], timeoutMs);
    if (oid === null) return { error: this.closed ? 'connection closed' : `no set-oid within ${timeoutMs} ms` };
    if (oid.command === 'error') return { error: `the server said "error ${oid.data}"` };
    const pid = await this.next(['set-pid'], timeoutMs);
    if (pid === null || pid.command === 'error') return { error: pid?.data ?? `no set-pid within ${timeoutMs} ms` };
    return { oid: oid.data, pid: pid.data };
  }

  close(): void {
    this.socket.destroy();
  }
}
