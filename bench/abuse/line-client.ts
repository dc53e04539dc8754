/**
 * A noray control connection from a chosen source address. NetfoxClient (test/clients) always
 * connects from the kernel's pick (127.0.0.1 on loopback, the attacker's address), so the measuring
 * clients speak the same lines through this small client bound to CLIENT_IP instead.
 */
import type { Socket } from 'node:net';
import { tcpConnect } from './common.js';

export interface Line {
  command: string;
  data: string;
}

export class LineClient {
  oid = '';
  pid = '';
  closed = false;
  private buffer = '';
  private readonly waiting: Array<{ commands: readonly string[]; resolve: (line: Line) => void; reject: (error: Error) => void }> = [];
  /** Called for every line nobody waits for (echo replies, notifications). */
  onLine: (command: string, data: string) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.ingest(text));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`connection closed while waiting for ${waiter.commands.join('/')}`));
      this.onClose();
    });
  }

  static async connect(port: number, localAddress: string): Promise<LineClient> {
    return new LineClient(await tcpConnect(port, localAddress));
  }

  private ingest(text: string): void {
    this.buffer += text;
    let newline = this.buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      const space = line.indexOf(' ');
      const command = space < 0 ? line : line.slice(0, space);
      const data = space < 0 ? '' : line.slice(space + 1);
      if (command === 'set-oid') this.oid = data;
      if (command === 'set-pid') this.pid = data;
      const index = this.waiting.findIndex((waiter) => waiter.commands.includes(command));
      if (index >= 0) this.waiting.splice(index, 1)[0]?.resolve({ command, data });
      else this.onLine(command, data);
      newline = this.buffer.indexOf('\n');
    }
  }

  send(command: string, data?: string): void {
    if (!this.closed) this.socket.write(data === undefined ? `${command}\n` : `${command} ${data}\n`);
  }

  /** The data of the next line with this command (lines nobody waits for go to onLine). */
  async next(command: string, timeoutMs = 5000): Promise<string> {
    return (await this.nextOf([command], timeoutMs)).data;
  }

  /** The next line with one of these commands. */
  nextOf(commands: readonly string[], timeoutMs = 5000): Promise<Line> {
    const what = commands.join('/');
    if (this.closed) return Promise.reject(new Error(`connection closed before ${what}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        commands,
        resolve: (line: Line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }

  async registerHost(): Promise<void> {
    this.send('register-host');
    await this.next('set-pid');
  }

  close(): void {
    this.socket.destroy();
  }
}
