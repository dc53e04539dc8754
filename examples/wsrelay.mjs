// The WebSocket message relay (CarParty's protocol): a game "screen" opens a room under a code,
// a phone joins it, and the relay carries their messages both ways. Both are WebSocket clients.
//
//   node examples/wsrelay.mjs [host] [port]    (default: 127.0.0.1 8080, a server from `npm start`)
//
// Node 20 has no global WebSocket without --experimental-websocket, so this uses the `ws`
// package (a dependency of noray: it resolves from the clone). In a browser, use WebSocket.
import WebSocket from 'ws';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 8080);
setTimeout(() => fail('gave up after 10 s'), 10_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

/** Opens a WebSocket to the relay; next() resolves with its next message, parsed. */
async function open(name) {
  const ws = new WebSocket(`ws://${host}:${port}/`);
  const inbox = [];
  const waiting = [];
  ws.on('message', (data) => {
    inbox.push(JSON.parse(String(data)));
    for (const wake of waiting.splice(0)) wake();
  });
  ws.on('close', (code) => code !== 1000 && code !== 1005 && fail(`${name} closed with ${code}`));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', (error) => reject(new Error(`${name}: ${error.message}`)));
  });
  const next = async () => {
    while (inbox.length === 0) await new Promise((resolve) => waiting.push(resolve));
    const message = inbox.shift();
    console.log(`${name} got ${JSON.stringify(message)}`);
    return message;
  };
  const send = (message) => ws.send(JSON.stringify(message));
  return { ws, next, send };
}

// The big screen opens room SNEK. The protocol has no login reply; a ping sent after the login
// is answered once the relay has read the login, so the phone below cannot come too early.
const screen = await open('screen');
screen.send({ action: 'login_server', server_code: 'SNEK' });
screen.ws.ping();
await new Promise((resolve) => screen.ws.once('pong', resolve));

// A phone joins room SNEK under its own id and steers.
const phone = await open('phone');
phone.send({ action: 'login_client', server_code: 'SNEK', client_id: '42' });
phone.send({ steer: -0.5 });

// The screen hears of the phone, then gets its message with the sender's id added.
const hello = await screen.next(); // {"action":"connect","client_id":"42"}
await screen.next(); // {"steer":-0.5,"client_id":"42"}

// A message with receiver_id goes to that phone only (without one: to every phone in the room).
screen.send({ receiver_id: hello.client_id, welcome: true });
await phone.next(); // {"receiver_id":"42","welcome":true}

// When the phone leaves, the screen is told.
phone.ws.close();
await screen.next(); // {"action":"disconnect","client_id":"42"}
screen.ws.close();
console.log('done');
