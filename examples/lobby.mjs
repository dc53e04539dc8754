// A whole lobby session against noray's lobby front (Orion's protocol): Alice hosts a lobby,
// Bob finds and joins it, they chat, and peer-to-peer mediation hands each the other's UDP
// address; they punch through and report success, and the lobby closes.
//
//   node examples/lobby.mjs [host] [port]      (default: 127.0.0.1 5980, a server from `npm start`)
import dgram from 'node:dgram';
import WebSocket from 'ws'; // a dependency of noray: resolves from the clone

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 5980);
setTimeout(() => fail('gave up after 20 s'), 20_000).unref();

// Every WebSocket frame and UDP datagram is `method:BASE64(JSON)`.
const encode = (method, payload) => `${method}:${Buffer.from(JSON.stringify(payload)).toString('base64')}`;
const decode = (text) => {
  const i = text.indexOf(':');
  return { method: text.slice(0, i), payload: JSON.parse(Buffer.from(text.slice(i + 1), 'base64').toString()) };
};

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

/** One player: the WebSocket that keeps it registered, and the UDP socket its game would use. */
async function player(name) {
  const ws = new WebSocket(`ws://${host}:${port}/`);
  const inbox = [];
  const waiting = [];
  ws.on('message', (data) => {
    inbox.push(decode(String(data)));
    for (const wake of waiting.splice(0)) wake();
  });
  ws.on('error', (error) => fail(`${name}: ${error.message}`));
  /** The first message with this method (others stay in the inbox for later). */
  const next = async (method) => {
    for (;;) {
      const i = inbox.findIndex((message) => message.method === method);
      if (i >= 0) return inbox.splice(i, 1)[0].payload;
      await new Promise((resolve) => waiting.push(resolve));
    }
  };
  const { token } = await next('client_registered'); // the first message: your secret token
  console.log(`${name} registered`);

  const udp = dgram.createSocket('udp4');
  await new Promise((resolve) => udp.bind(0, resolve));
  // During mediation the server asks (and reminds) us to send one packet to its UDP port.
  ws.on('message', (data) => {
    const { method, payload } = decode(String(data));
    if (method === 'ptpMediation_send') udp.send(encode('ptpMediation_connect', { token }), payload.port, host);
  });
  const send = (method, payload) => ws.send(encode(method, { token, ...payload }));
  const close = () => {
    ws.close();
    udp.close();
  };
  return { name, token, udp, next, send, close };
}

/** An HTTP call to the lobby API; prints the status and the body. */
async function call(method, path, body) {
  const response = await fetch(`http://${host}:${port}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  console.log(`${method} ${path} -> ${response.status} ${text}`.trim());
  if (!response.ok) fail(`${method} ${path} answered ${response.status}`);
  return text ? JSON.parse(text) : {};
}

/** Sends hellos to a peer's address from our game socket until one of theirs arrives. */
function punch(me, peer) {
  return new Promise((resolve) => {
    const hello = Buffer.from(`hello from ${me.name}`);
    const timer = setInterval(() => me.udp.send(hello, peer.port, peer.ip), 100);
    me.udp.send(hello, peer.port, peer.ip);
    me.udp.on('message', function heard(message) {
      if (!message.toString().startsWith('hello from')) return;
      clearInterval(timer);
      me.udp.off('message', heard);
      console.log(`${me.name} heard "${message}" directly`);
      resolve();
    });
  });
}

const alice = await player('Alice');
const bob = await player('Bob');

// 1. Alice creates a public lobby and becomes its host.
const { lobbyId } = await call('POST', '/lobbies', {
  token: alice.token,
  hostName: 'Alice',
  lobbyName: 'Friday night',
  isPublic: true,
  maxMembers: 4,
});

// 2. Bob lists the public lobbies and joins; Alice hears about it.
await call('GET', '/lobbies');
await call('POST', `/lobbies/${lobbyId}/join`, { token: bob.token, peerName: 'Bob' });
console.log(`Alice got lobby_peerConnect: ${(await alice.next('lobby_peerConnect')).peerName}`);

// 3. Chat over the WebSocket: every member, the sender included, receives it.
bob.send('lobby_messaging_send', { lobbyId, message: 'ready?' });
for (const member of [alice, bob]) {
  const { message } = await member.next('lobby_messaging_received');
  console.log(`${member.name} got lobby_messaging_received: ${message.senderName} says "${message.message}"`);
}

// 4. The host starts mediation; each player sends its UDP packet (see player()) and gets the
//    others' public addresses: the host gets every member, the others get the host.
await call('POST', `/lobbies/${lobbyId}/ptp/start`, { token: alice.token });
const [alicePeers, bobPeers] = await Promise.all([
  alice.next('ptpMediation_peersConnection_start'),
  bob.next('ptpMediation_peersConnection_start'),
]);
const where = ({ peers }) => peers.map((peer) => `${peer.ip}:${peer.port}`).join(', ');
console.log(`Alice got ptpMediation_peersConnection_start: peers ${where(alicePeers)}`);
console.log(`Bob got ptpMediation_peersConnection_start: peers ${where(bobPeers)}`);

// 5. Punching through is the game's part; then every member reports success.
await Promise.all([punch(alice, alicePeers.peers[0]), punch(bob, bobPeers.peers[0])]);
for (const member of [alice, bob]) member.send('ptpMediation_peersConnection_success', {});
for (const member of [alice, bob]) {
  await member.next('ptpMediation_success');
  const { lobbyName } = await member.next('lobby_closed');
  console.log(`${member.name} got ptpMediation_success, then lobby_closed "${lobbyName}"`);
}

alice.close();
bob.close();
console.log('done');
