export { createWsRelayFront } from './server.js';
