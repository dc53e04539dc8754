/**
 * 2. Relay monopoly: 5 sessions of one IP, each in a loop re-registering from a new UDP port and
 * asking `connect-relay` to another of the attacker's own hosts, trying to take every relay port.
 * The per-source and per-session relay caps should stop it long before the port range runs out.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { ATTACKER_IP, Counters, errorText, loops, registerUdp, udpSocket, type Attack } from '../common.js';
import { LineClient } from '../line-client.js';

const SESSIONS = 5;

export const relayMonopoly: Attack = async ({ ports }) => {
  const counters = new Counters();
  const sessions = await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      const client = await LineClient.connect(ports.control, ATTACKER_IP);
      await client.registerHost();
      return client;
    }),
  );
  const relayPorts = new Set<number>();
  const sockets: UdpSocket[] = [];
  const running = loops(SESSIONS, async (index) => {
    const self = sessions[index]!;
    const target = sessions[(index + 1) % SESSIONS]!;
    if (self.closed) {
      counters.add('sessions_closed_by_server');
      await new Promise((resolve) => setTimeout(resolve, 200));
      return;
    }
    try {
      // A new UDP port each round: to the server, a new external endpoint of the same session.
      const udp = await udpSocket(ATTACKER_IP);
      sockets.push(udp);
      const answer = await registerUdp(udp, self.pid, ports.registrar, 2000);
      counters.add(answer === 'OK' ? 'reregistered' : `registrar_${answer.replace(/\W+/g, '_')}`);
      udp.close();
      sockets.splice(sockets.indexOf(udp), 1);
      self.send('connect-relay', target.oid);
      const line = await self.nextOf(['connect-relay', 'error'], 3000);
      if (line.command === 'connect-relay') {
        counters.add('relays_granted');
        relayPorts.add(Number(line.data));
      } else {
        counters.add(`refused: ${line.data}`);
      }
    } catch (error) {
      counters.add(`failed: ${errorText(error)}`);
    }
  });
  return {
    stop: async () => {
      await running.stop();
      for (const socket of sockets) socket.close();
      for (const session of sessions) session.close();
      counters.add('distinct_relay_ports', relayPorts.size);
      return counters.toJSON();
    },
  };
};
