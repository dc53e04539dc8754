// Every file in examples/ runs as README shows it, against a real server, and README shows it
// exactly as it is.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { port, startApp } from './helpers/app.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const run = promisify(execFile);

/** Runs `node examples/NAME 127.0.0.1 PORT...` from the clone, as README says; resolves with its lines. */
async function example(name: string, ...serverPorts: number[]): Promise<string[]> {
  const { stdout, stderr } = await run(process.execPath, [join('examples', name), '127.0.0.1', ...serverPorts.map(String)], {
    cwd: ROOT,
    timeout: 25_000,
  });
  expect(stderr).toBe('');
  expect(stdout.endsWith('done\n')).toBe(true);
  return stdout.split('\n').slice(0, -1);
}

describe('examples/', () => {
  it.each(readdirSync(join(ROOT, 'examples')))('README shows %s as it is, with the command to run it', (name) => {
    const source = readFileSync(join(ROOT, 'examples', name), 'utf8');
    expect(README).toContain(`\`\`\`js\n${source}\`\`\``);
    expect(README).toContain(`node examples/${name}`);
  });

  it('lobby.mjs: create, list, join, chat, mediation, punch-through, lobby closed; exit 0', async () => {
    const app = await startApp({ lobbyHttpPort: 0, lobbyUdpPort: 0 });
    const lines = await example('lobby.mjs', port(app, 'lobby', 'http'));
    const lobbyId = /^Alice created lobby (\S+)$/m.exec(lines.join('\n'))?.[1] ?? 'missing';
    const shown = lines.map((line) => line.replaceAll(lobbyId, 'ID').replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT'));
    // The two punch-throughs run at once: either may finish first.
    const heard = shown.splice(11, 2).sort();
    expect(heard).toEqual(['Alice heard "hello from Bob" directly', 'Bob heard "hello from Alice" directly']);
    expect(shown).toEqual([
      'Alice registered',
      'Bob registered',
      'Alice created lobby ID',
      'Bob sees [{"name":"Friday night","id":"ID","currentMembers":1,"maxMembers":4}]',
      'Bob joined; members: Alice, Bob',
      'Alice got lobby_peerConnect: Bob',
      'Alice got lobby_messaging_received: Bob says "ready?"',
      'Bob got lobby_messaging_received: Bob says "ready?"',
      'Alice started mediation',
      'Alice got ptpMediation_peersConnection_start: peers 127.0.0.1:PORT',
      'Bob got ptpMediation_peersConnection_start: peers 127.0.0.1:PORT',
      'Alice got ptpMediation_success, then lobby_closed "Friday night"',
      'Bob got ptpMediation_success, then lobby_closed "Friday night"',
      'done',
    ]);
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 0 });
  });

  it('wsrelay.mjs: a screen and a phone in one room, messages both ways; exit 0', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    expect(await example('wsrelay.mjs', port(app, 'wsrelay', 'ws'))).toEqual([
      'screen: phone 42 joined',
      'screen got {"steer":-0.5,"client_id":"42"}',
      'phone got {"welcome":true,"receiver_id":"42"}',
      'screen: phone 42 left',
      'done',
    ]);
  });

  it('tcprelay.mjs: two clients take ids and message each other; exit 0', async () => {
    const app = await startApp({ tcprelayPort: 0 });
    expect(await example('tcprelay.mjs', port(app, 'tcprelay', 'tcp'))).toEqual([
      'ids: alice, bob',
      'bob got "hi bob" from alice',
      'alice got "hi alice" from bob',
      'done',
    ]);
  });

  it('noray.mjs: register, connect, handshake directly and through the relay; exit 0', async () => {
    const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0] });
    const lines = await example('noray.mjs', port(app, 'noray', 'control'), port(app, 'noray', 'registrar'));
    expect(lines.map((line) => line.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT'))).toEqual([
      'host registered as friday-night',
      'guest registered',
      'guest: connect friday-night -> host at 127.0.0.1:PORT',
      'host: guest at 127.0.0.1:PORT',
      'handshake directly: host ok, guest ok',
      'guest: connect-relay -> send to 127.0.0.1:PORT',
      'host: connect-relay -> send to 127.0.0.1:PORT',
      'handshake through the relay: host ok, guest ok',
      'done',
    ]);
  });
});
