import { describe, expect, it } from 'vitest';
import { startLobby } from './fixtures.js';
import { eventually, OrionClient } from '../clients/orion.js';

const GROUPS = 120; // three clients each: 360 clients
const CONCURRENT_GROUPS = 12;

type Scenario = (httpPort: number, udpPort: number, index: number) => Promise<void>;

async function group(httpPort: number, udpPort: number, index: number): Promise<{ lobbyId: string; members: OrionClient[] }> {
  const members = await Promise.all([0, 1, 2].map(() => OrionClient.connect(httpPort, udpPort)));
  const [host, ...others] = members as [OrionClient, OrionClient, OrionClient];
  const created = await host.createLobby({ hostName: `Host${index}`, lobbyName: `Lobby ${index}`, maxMembers: 3 });
  if (created.status !== 201) throw new Error(`create ${created.status}`);
  const lobbyId = (created.body as { lobbyId: string }).lobbyId;
  for (const [n, member] of others.entries()) {
    const joined = await member.join(lobbyId, `Peer${n}`);
    if (joined.status !== 200) throw new Error(`join ${joined.status}`);
  }
  return { lobbyId, members };
}

const scenarios: Scenario[] = [
  async function mediatedToSuccess(httpPort, udpPort, index) {
    const { lobbyId, members } = await group(httpPort, udpPort, index);
    if ((await members[0]!.startMediation(lobbyId)).status !== 200) throw new Error('start');
    for (const member of members) await member.sendUdp();
    for (const member of members) await member.next('ptpMediation_peersConnection_start');
    for (const member of members) member.sendWs('ptpMediation_peersConnection_success', { token: member.token });
    for (const member of members) await member.next('lobby_closed');
    await Promise.all(members.map((member) => member.close()));
  },
  async function memberVanishesThenHostLeaves(httpPort, udpPort, index) {
    const { members } = await group(httpPort, udpPort, index);
    members[2]!.ws.terminate();
    await members[0]!.next('lobby_peerDisconnect');
    await Promise.all(members.map((member) => member.close()));
  },
  async function hostVanishesMidMediation(httpPort, udpPort, index) {
    const { lobbyId, members } = await group(httpPort, udpPort, index);
    await members[0]!.startMediation(lobbyId);
    await members[1]!.sendUdp();
    members[0]!.ws.terminate();
    await members[1]!.next('lobby_closed');
    await Promise.all(members.map((member) => member.close()));
  },
  async function memberVanishesDuringUdpStage(httpPort, udpPort, index) {
    const { lobbyId, members } = await group(httpPort, udpPort, index);
    await members[0]!.startMediation(lobbyId);
    await members[0]!.sendUdp();
    await members[2]!.close();
    await members[0]!.next('ptpMediation_aborted');
    await Promise.all(members.map((member) => member.close()));
  },
  async function everyoneVanishesMidConnectStage(httpPort, udpPort, index) {
    const { lobbyId, members } = await group(httpPort, udpPort, index);
    members[1]!.chat(lobbyId, 'bye');
    await members[0]!.startMediation(lobbyId);
    for (const member of members) await member.sendUdp();
    await members[0]!.next('ptpMediation_peersConnection_start');
    for (const member of members) member.ws.terminate();
    await Promise.all(members.map((member) => member.close()));
  },
];

describe('lobby front churn', () => {
  it('leaves no client, lobby or timer behind after hundreds of clients come and go', async () => {
    const { app, httpPort, udpPort } = await startLobby();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < GROUPS) {
        const index = next++;
        await (scenarios[index % scenarios.length] as Scenario)(httpPort, udpPort, index);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENT_GROUPS }, worker));

    const front = app.front('lobby');
    await eventually(() => front?.stats().clients === 0 && front.stats().connections === 0 && front.stats().admitted === 0);
    // admitted: every connection-gate slot was released, whatever way its socket ended.
    expect(front?.stats()).toEqual({ clients: 0, lobbies: 0, mediations: 0, timers: 0, connections: 0, admitted: 0 });
    const succeeded = await app.metrics.getSingleMetric('noray_lobby_mediations_succeeded_total')?.get();
    expect(succeeded?.values[0]?.value).toBe(GROUPS / scenarios.length);
  }, 120_000);
});
