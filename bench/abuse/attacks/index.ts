/** The attacks of the abuse benchmark, in the order they run. */
import type { Attack } from '../common.js';
import { connectFlood } from './connect-flood.js';
import { guessing } from './guessing.js';
import { lobbyFlood } from './lobby-flood.js';
import { registrarGarbage } from './registrar-garbage.js';
import { relayMonopoly } from './relay-monopoly.js';
import { silent } from './silent.js';
import { tcprelayBig } from './tcprelay-big.js';
import { wsrelayBig } from './wsrelay-big.js';

export const ATTACKS: ReadonlyArray<{ name: string; title: string; run: Attack }> = [
  { name: 'registrar-garbage', title: '1 registrar garbage', run: registrarGarbage },
  { name: 'relay-monopoly', title: '2 relay monopoly', run: relayMonopoly },
  { name: 'wsrelay-big', title: '3 wsrelay 1 MB messages', run: wsrelayBig },
  { name: 'lobby-flood', title: '4 lobby listing flood', run: lobbyFlood },
  { name: 'connect-flood', title: '5 connect flood', run: connectFlood },
  { name: 'tcprelay-big', title: '6 tcprelay 1 MB frames', run: tcprelayBig },
  { name: 'silent', title: '7 silent connections', run: silent },
  { name: 'guessing', title: '8 guessing', run: guessing },
];
