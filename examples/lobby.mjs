// A whole lobby session against noray's lobby front (Orion's protocol) with the client SDK:
// Alice hosts a lobby, Bob finds and joins it, they chat, and peer-to-peer mediation hands each
// the other's UDP address; they punch through and report success, and the lobby closes.
//
//   node examples/lobby.mjs [host] [port]      (default: 127.0.0.1 5980, a server from `npm start`)
//
// In your project: `import { LobbyClient } from 'noray/client'` (browsers too) and
// `mediateOverUdp` from 'noray/client/node'. Node 20 has no global WebSocket: pass the `ws`
// package's (a dependency of noray); browsers need no WebSocket option.
import { LobbyClient, mediateOverUdp } from 'noray/client/node';
import { WebSocket } from 'ws';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 5980);
setTimeout(() => fail('gave up after 20 s'), 20_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

/** One player: the lobby client (its WebSocket keeps it registered) and its game's UDP socket. */
async function player(name) {
  const lobby = await LobbyClient.connect({ url: `http://${host}:${port}`, WebSocket });
  lobby.on('close', ({ code }) => code !== 1000 && code !== 1005 && fail(`${name}: closed with ${code}`));
  // During mediation the server asks (and reminds) each member to send one UDP packet; this
  // answers from the game's socket, so that socket's address is the one peers are given.
  const { socket: udp } = await mediateOverUdp(lobby);
  console.log(`${name} registered`);
  return { name, lobby, udp };
}

/** Sends hellos to a peer's address from our game socket until one of theirs arrives. */
function punch(me, peer) {
  return new Promise((resolve) => {
    const hello = `hello from ${me.name}`;
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
const { lobbyId } = await alice.lobby.createLobby({ hostName: 'Alice', lobbyName: 'Friday night', isPublic: true, maxMembers: 4 });
console.log(`Alice created lobby ${lobbyId}`);

// 2. Bob lists the public lobbies and joins; Alice hears about it. Events reach only listeners
//    already attached, so listen before the call that causes them.
console.log(`Bob sees ${JSON.stringify(await bob.lobby.listLobbies())}`);
const joined = alice.lobby.once('lobby_peerConnect');
const { lobbyMembers } = await bob.lobby.joinLobby(lobbyId, 'Bob');
console.log(`Bob joined; members: ${lobbyMembers.join(', ')}`);
console.log(`Alice got lobby_peerConnect: ${(await joined).peerName}`);

// 3. Chat over the WebSocket: every member, the sender included, receives it.
const chats = [alice, bob].map((member) => member.lobby.once('lobby_messaging_received'));
bob.lobby.sendChat(lobbyId, 'ready?');
for (const [i, chat] of chats.entries()) {
  const { message } = await chat;
  console.log(`${[alice, bob][i].name} got lobby_messaging_received: ${message.senderName} says "${message.message}"`);
}

// 4. The host starts mediation; each player's UDP packet goes out (see player()), and each gets
//    the others' public addresses: the host gets every member, the others get the host.
const starts = [alice, bob].map((member) => member.lobby.once('ptpMediation_peersConnection_start'));
await alice.lobby.startMediation(lobbyId);
console.log('Alice started mediation');
const [alicePeers, bobPeers] = await Promise.all(starts);
const where = ({ peers }) => peers.map((peer) => `${peer.ip}:${peer.port}`).join(', ');
console.log(`Alice got ptpMediation_peersConnection_start: peers ${where(alicePeers)}`);
console.log(`Bob got ptpMediation_peersConnection_start: peers ${where(bobPeers)}`);

// 5. Punching through is the game's part; then every member reports success.
await Promise.all([punch(alice, alicePeers.peers[0]), punch(bob, bobPeers.peers[0])]);
const ends = [alice, bob].map((member) => Promise.all([member.lobby.once('ptpMediation_success'), member.lobby.once('lobby_closed')]));
for (const member of [alice, bob]) member.lobby.reportPeersConnected();
for (const [i, end] of ends.entries()) {
  const [, { lobbyName }] = await end;
  console.log(`${[alice, bob][i].name} got ptpMediation_success, then lobby_closed "${lobbyName}"`);
}

for (const member of [alice, bob]) {
  member.udp.close();
  await member.lobby.close();
}
console.log('done');
