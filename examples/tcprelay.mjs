// The TCP message relay (RoccoRelayServer's protocol) with the client SDK: Alice and Bob each
// take an id, then send messages to each other's id through the relay.
//
//   node examples/tcprelay.mjs [host] [port]   (default: 127.0.0.1 5300, a server from `npm start`)
//
// In your project: `import { TcpRelayClient } from 'noray/client/node'` (TCP: Node only).
import { TcpRelayClient } from 'noray/client/node';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 5300);
setTimeout(() => fail('gave up after 10 s'), 10_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

// Each connects and takes an id (INIT); leave `id` out and the relay picks one.
const alice = await TcpRelayClient.open({ host, port, id: 'alice' });
const bob = await TcpRelayClient.open({ host, port, id: 'bob' });
console.log(`ids: ${alice.id}, ${bob.id}`);
for (const client of [alice, bob]) client.on('error', ({ payload }) => fail(`${client.id}: ${payload}`));

// A message to an id arrives there with the sender's id stamped as its source. Events reach
// only listeners already attached, so listen before sending.
const toBob = bob.once('message');
alice.send('bob', 'hi bob');
const { source, payload } = await toBob;
console.log(`bob got "${payload}" from ${source}`);

const toAlice = alice.once('message');
bob.send(source, 'hi alice');
console.log(`alice got "${(await toAlice).payload}" from ${(await toAlice).source}`);

await alice.end();
await bob.end();
console.log('done');
