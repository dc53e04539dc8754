import { connect, type Socket } from 'node:net';

/** A TCP client for line protocols (noray control): send lines, await the next line that matches. */
export class LineClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: { match: (line: string) => boolean; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private closedError: Error | null = null;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let index: number;
      while ((index = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, index).replace(/\r$/, '');
        this.buffer = this.buffer.slice(index + 1);
        this.deliver(line);
      }
    });
    const fail = (error: Error) => {
      this.closedError = error;
      for (const waiter of this.waiters) waiter.reject(error);
      this.waiters = [];
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(port: number, host = '127.0.0.1'): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new LineClient(socket));
      });
    });
  }

  private deliver(line: string): void {
    const index = this.waiters.findIndex((waiter) => waiter.match(line));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  send(line: string): void {
    this.socket.write(`${line}\n`);
  }

  /** The next line starting with `prefix ` (already received or still to come); resolves to its data. */
  next(prefix: string, timeoutMs = 10_000): Promise<string> {
    const match = (line: string) => line.startsWith(`${prefix} `) || line === prefix;
    const strip = (line: string) => line.slice(prefix.length + 1);
    const index = this.lines.findIndex(match);
    if (index >= 0) return Promise.resolve(strip(this.lines.splice(index, 1)[0]!));
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: (line: string) => match(line) || line.startsWith('error '),
        resolve: (line: string) => {
          clearTimeout(timer);
          if (line.startsWith('error ')) reject(new Error(`server: ${line}`));
          else resolve(strip(line));
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for "${prefix}"`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
