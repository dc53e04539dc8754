import { option } from '../option.js';
import { parseDuration, parseHost, parseOptionalPort, parsePositiveDuration } from '../units.js';

export const lobbyOptions = {
  lobbyHost: option({
    env: 'NORAY_LOBBY_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Listen address of the lobby front (HTTP, WebSocket and UDP)',
  }),
  lobbyHttpPort: option({
    env: 'NORAY_LOBBY_HTTP_PORT',
    default: '5980',
    parse: parseOptionalPort,
    describe: 'Port of the lobby HTTP + WebSocket server, or "off" to disable the lobby front',
    aliases: ['httpPort'],
  }),
  lobbyUdpPort: option({
    env: 'NORAY_LOBBY_UDP_PORT',
    default: '5990',
    parse: parseOptionalPort,
    describe: 'Port where lobby members send their mediation UDP packet, or "off"',
    aliases: ['udpPort'],
  }),
  lobbyServerConnectTimeout: option({
    env: 'NORAY_LOBBY_SERVER_CONNECT_TIMEOUT',
    default: '5m',
    parse: parseDuration,
    describe: 'Mediation: how long to wait for every member\'s UDP packet',
    aliases: ['ptpmServerConnectTimeoutMs'],
  }),
  lobbyConnectRequestInterval: option({
    env: 'NORAY_LOBBY_CONNECT_REQUEST_INTERVAL',
    default: '10s',
    parse: parseDuration,
    describe: 'Mediation: interval of reminders to members whose UDP packet is missing',
    aliases: ['ptpmConnectRequestIntervalMs'],
  }),
  lobbyConnectTimeout: option({
    env: 'NORAY_LOBBY_CONNECT_TIMEOUT',
    default: '5m',
    parse: parseDuration,
    describe: 'Mediation: how long to wait for every member to report a direct connection',
    aliases: ['ptpmConnectTimeoutMs'],
  }),
  lobbyPingInterval: option({
    env: 'NORAY_LOBBY_PING_INTERVAL',
    default: '10s',
    parse: parsePositiveDuration,
    describe: 'How often the lobby pings each WebSocket client; a client that misses 2 pongs in a row is dropped (and leaves its lobby)',
  }),
};
