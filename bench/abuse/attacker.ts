/**
 * One attacker process (a child of the runner, driven over IPC): `start` begins the named attack
 * and answers once it is under way, `stop` ends it, releases every socket and returns its counters.
 * The runner starts one such process per attack, so each attack has its own event loop and dies
 * with its process.
 */
import { serve } from '../lib/rpc.js';
import { ATTACKS } from './attacks/index.js';
import type { AttackContext, AttackStats, RunningAttack } from './common.js';

let running: RunningAttack | null = null;

serve({
  start: async (params: { attack: string; ctx: AttackContext }) => {
    const attack = ATTACKS.find((entry) => entry.name === params.attack);
    if (!attack) throw new Error(`unknown attack ${params.attack}`);
    if (running) throw new Error('an attack is already running');
    running = await attack.run(params.ctx);
    return null;
  },
  stop: async (): Promise<AttackStats> => {
    const attack = running;
    running = null;
    return attack ? attack.stop() : {};
  },
});
