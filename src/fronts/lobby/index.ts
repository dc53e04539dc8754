export { createLobbyFront, LobbyFront } from './server.js';
