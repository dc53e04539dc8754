// The WebSocket message relay (CarParty's protocol) with the client SDK: a game "screen" opens a
// room under a code, a phone joins it, and the relay carries their messages both ways.
//
//   node examples/wsrelay.mjs [host] [port]    (default: 127.0.0.1 8080, a server from `npm start`)
//
// In your project: `import { GameServer, Phone } from 'noray/client'` (browsers too). Node 20
// has no global WebSocket: pass the `ws` package's (a dependency of noray); browsers need none.
import { GameServer, Phone } from 'noray/client';
import { WebSocket } from 'ws';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 8080);
const url = `ws://${host}:${port}/`;
setTimeout(() => fail('gave up after 10 s'), 10_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

// The big screen opens room SNEK (open() rejects if the code is taken).
const screen = await GameServer.open({ url, WebSocket, code: 'SNEK' });
screen.on('connect', ({ clientId }) => console.log(`screen: phone ${clientId} joined`));
screen.on('disconnect', ({ clientId }) => console.log(`screen: phone ${clientId} left`));

// A phone joins room SNEK under its own id and steers. Events reach only listeners already
// attached, so listen before what causes them.
const steered = screen.once('message');
const phone = await Phone.join({ url, WebSocket, code: 'SNEK', clientId: '42' });
phone.send({ steer: -0.5 });

// The screen gets the phone's message with the sender's id added by the relay.
const { clientId, text } = await steered;
console.log(`screen got ${text}`);

// sendTo() reaches that phone only (broadcast() reaches every phone in the room).
const welcome = phone.once('message');
screen.sendTo(clientId, { welcome: true });
console.log(`phone got ${(await welcome).text}`);

// When the phone leaves, the screen is told.
const left = screen.once('disconnect');
await phone.close();
await left;
await screen.close();
console.log('done');
