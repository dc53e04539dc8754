import type { ConfigOf } from './option.js';
import { clusterOptions } from './options/cluster.js';
import { generalOptions } from './options/general.js';
import { limitOptions } from './options/limits.js';
import { lobbyOptions } from './options/lobby.js';
import { norayOptions } from './options/noray.js';
import { relayFrontOptions } from './options/relays.js';

/** Every configuration key of the server. Each front's options live in options/<front>.ts. */
export const OPTIONS = {
  ...generalOptions,
  ...norayOptions,
  ...lobbyOptions,
  ...relayFrontOptions,
  ...limitOptions,
  ...clusterOptions,
};

export type ConfigKey = keyof typeof OPTIONS;
export type Config = ConfigOf<typeof OPTIONS>;
