// The TCP message relay (RoccoRelayServer's protocol): Alice and Bob each take an id with INIT,
// then send MESSAGE frames to each other's id through the relay.
//
//   node examples/tcprelay.mjs [host] [port]   (default: 127.0.0.1 5300, a server from `npm start`)
import { connect } from 'node:net';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 5300);
setTimeout(() => fail('gave up after 10 s'), 10_000).unref();

function fail(reason) {
  console.error(`failed: ${reason}`);
  process.exit(1);
}

// A frame is a 32-bit big-endian length, then that many bytes of UTF-8 JSON.
const frame = (message) => {
  const body = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(4);
  head.writeInt32BE(body.length);
  return Buffer.concat([head, body]);
};

/** Connects to the relay; next() resolves with the next frame received, parsed. */
async function client(name) {
  const socket = connect(port, host);
  const inbox = [];
  const waiting = [];
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const length = buffered.readInt32BE(0);
      inbox.push(JSON.parse(buffered.subarray(4, 4 + length).toString('utf8')));
      buffered = buffered.subarray(4 + length);
    }
    for (const wake of waiting.splice(0)) wake();
  });
  socket.on('error', (error) => fail(`${name}: ${error.message}`));
  await new Promise((resolve) => socket.once('connect', resolve));
  const next = async () => {
    while (inbox.length === 0) await new Promise((resolve) => waiting.push(resolve));
    const message = inbox.shift();
    console.log(`${name} got ${JSON.stringify(message)}`);
    return message;
  };
  return { next, send: (message) => socket.write(frame(message)), end: () => socket.end() };
}

// Each takes an id; the relay confirms it ({"payloadType":"INIT","destination":ID}).
const alice = await client('alice');
alice.send({ payloadType: 'INIT', source: 'alice' });
await alice.next();
const bob = await client('bob');
bob.send({ payloadType: 'INIT', source: 'bob' });
await bob.next();

// A MESSAGE to an id arrives there with the sender's id stamped as source.
alice.send({ payloadType: 'MESSAGE', destination: 'bob', payload: 'hi bob' });
const { source } = await bob.next();
bob.send({ payloadType: 'MESSAGE', destination: source, payload: 'hi alice' });
await alice.next();

alice.end();
bob.end();
console.log('done');
