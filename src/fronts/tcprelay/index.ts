export { createTcpRelayFront } from './server.js';
