// NAT punchthrough and the UDP relay (the noray protocol, as netfox speaks it) with the client
// SDK: a host and a guest register, the guest connects to the host's OpenID, and both run
// netfox's PacketHandshake, first directly, then through the relay.
//
//   node examples/noray.mjs [host] [port] [registrar port]   (default: 127.0.0.1 8890 8809, a server from `npm start`)
//
// In your project: `import { NorayClient, handshake } from 'noray/client/node'` (UDP: Node only).
import { createSocket } from 'node:dgram';
import { handshake, NorayClient } from 'noray/client/node';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 8890);
const registrarPort = Number(process.argv[4] ?? 8809);
setTimeout(() => fail('gave up after 20 s'), 20_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

/** A player: its control connection, registered, and the game's UDP socket, registered too. */
async function player(name, openId) {
  const noray = await NorayClient.connect({ host, port, registrarPort });
  noray.on('error', ({ reason }) => console.log(`${name}: noray says ${reason}`));
  const { oid } = await noray.register(openId); // leave openId out and the server makes one
  // register_remote: the registrar learns this socket's public address. Keep using the socket
  // (or at least its port) for the handshake and the game: it is the address peers are given.
  const game = createSocket('udp4');
  await new Promise((resolve) => game.bind(0, resolve));
  await noray.registerRemote({ socket: game });
  console.log(`${name} registered${openId ? ` as ${oid}` : ''}`);
  return { name, noray, game };
}

const show = ({ address, port }) => `${address}:${port}`;

const hostPlayer = await player('host', 'friday-night');
const guest = await player('guest');

// NAT punchthrough: each side learns the other's public address. Events reach only listeners
// already attached, so the host listens before the guest connects.
const guestAt = hostPlayer.noray.once('connect');
const hostAt = await guest.noray.connectNat('friday-night');
console.log(`guest: connect friday-night -> host at ${show(hostAt)}`);
console.log(`host: guest at ${show(await guestAt)}`);
const direct = await Promise.all([handshake(hostPlayer.game, (await guestAt).address, (await guestAt).port), handshake(guest.game, hostAt.address, hostAt.port)]);
console.log(`handshake directly: host ${direct[0] ? 'ok' : 'failed'}, guest ${direct[1] ? 'ok' : 'failed'}`);

// When punchthrough fails, the relay: each side sends to the noray host at the port it is given.
const relayForHost = hostPlayer.noray.once('connect-relay');
const relayForGuest = await guest.noray.connectRelay('friday-night');
console.log(`guest: connect-relay -> send to ${show(relayForGuest)}`);
console.log(`host: connect-relay -> send to ${show(await relayForHost)}`);
const relayed = await Promise.all([
  handshake(hostPlayer.game, (await relayForHost).address, (await relayForHost).port),
  handshake(guest.game, relayForGuest.address, relayForGuest.port),
]);
console.log(`handshake through the relay: host ${relayed[0] ? 'ok' : 'failed'}, guest ${relayed[1] ? 'ok' : 'failed'}`);

for (const { noray, game } of [hostPlayer, guest]) {
  game.close();
  await noray.close();
}
console.log('done');
