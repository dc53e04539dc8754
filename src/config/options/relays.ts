import { option } from '../option.js';
import { parseHost, parseOptionalPort } from '../units.js';

export const relayFrontOptions = {
  wsrelayHost: option({
    env: 'NORAY_WSRELAY_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Listen address of the WebSocket message relay (CarParty-compatible)',
  }),
  wsrelayPort: option({
    env: 'NORAY_WSRELAY_PORT',
    default: '8080',
    parse: parseOptionalPort,
    describe: 'Port of the WebSocket message relay, or "off"',
  }),
  tcprelayHost: option({
    env: 'NORAY_TCPRELAY_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Listen address of the TCP message relay (Rocco-compatible)',
  }),
  tcprelayPort: option({
    env: 'NORAY_TCPRELAY_PORT',
    default: '5300',
    parse: parseOptionalPort,
    describe: 'Port of the TCP message relay, or "off"',
  }),
};
