/**
 * 5. Connect flood: 200 registered control connections of one IP send `connect OID` for the
 * measured host's OpenID, each 100 times a second (under the message rate, so none is closed for
 * it). The per-connection and per-host connect buckets and coalescing should keep the host's
 * notifications bounded; the host must not be disconnected.
 */
import { NetfoxClient } from '../../../test/clients/netfox.js';
import { ATTACKER_IP, Counters, errorText, SERVER_HOST, type Attack } from '../common.js';

const CONNECTIONS = 200;
const INTERVAL_MS = 10;

export const connectFlood: Attack = async ({ ports, hostOid }) => {
  const counters = new Counters();
  const clients: NetfoxClient[] = [];
  let stopping = false;
  for (let i = 0; i < CONNECTIONS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, CONNECTIONS - i) }, async () => {
        try {
          const client = await NetfoxClient.connect(ports.control, SERVER_HOST, ATTACKER_IP);
          clients.push(client);
          await client.registerHost();
          const registered = await client.registerRemote(ports.registrar, { timeoutMs: 4000 });
          counters.add(`registered_${registered}`);
        } catch (error) {
          counters.add(`setup_failed: ${errorText(error)}`);
        }
      }),
    );
  }
  for (const client of clients) {
    let rest = '';
    client.socket.on('data', (text: string) => {
      const lines = (rest + text).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('connect ')) counters.add('connect_answered');
        else if (line.startsWith('error ')) counters.add(`refused: ${line.slice(6)}`);
      }
    });
    client.socket.on('close', () => {
      if (!stopping) counters.add('attacker_connections_closed_by_server');
    });
  }
  const timer = setInterval(() => {
    for (const client of clients) {
      if (client.closed) continue;
      client.putCommand('connect', hostOid);
      counters.add('connect_sent');
    }
  }, INTERVAL_MS);
  return {
    stop: async () => {
      stopping = true;
      clearInterval(timer);
      for (const client of clients) client.close();
      return counters.toJSON();
    },
  };
};
