import { option } from '../option.js';
import { ConfigValueError, parseByteSize, parseDuration, parseHost, parseInteger, parseOptionalPort, parsePositiveDuration } from '../units.js';

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
  wsrelayMaxMessageSize: option({
    env: 'NORAY_WSRELAY_MAX_MESSAGE_SIZE',
    default: '1mb',
    parse: positiveByteSize,
    describe: 'Largest WebSocket message the relay accepts; a larger one closes the connection with 1009',
  }),
  wsrelaySendBuffer: option({
    env: 'NORAY_WSRELAY_SEND_BUFFER',
    default: '4mb',
    parse: positiveByteSize,
    describe: 'Bytes queued for one WebSocket peer before it is disconnected as too slow',
  }),
  wsrelayPingInterval: option({
    env: 'NORAY_WSRELAY_PING_INTERVAL',
    default: '1s',
    parse: parsePositiveDuration,
    describe: 'How often the WebSocket relay pings each peer; a peer that misses 2 pongs in a row is dropped',
  }),
  tcprelayMaxFrameSize: option({
    env: 'NORAY_TCPRELAY_MAX_FRAME_SIZE',
    default: '1mb',
    parse: positiveByteSize,
    describe: 'Largest frame body the TCP relay accepts; a larger announced length closes the connection',
  }),
  tcprelaySendBuffer: option({
    env: 'NORAY_TCPRELAY_SEND_BUFFER',
    default: '4mb',
    parse: positiveByteSize,
    describe: 'Bytes queued for one TCP relay peer before it is disconnected as too slow',
  }),
  tcprelayIdReservation: option({
    env: 'NORAY_TCPRELAY_ID_RESERVATION',
    default: '30s',
    parse: parseDuration,
    describe: 'A TCP relay id freed by a disconnect stays reserved this long for INITs from the same source IP (IPv6: per /64); 0 turns it off',
  }),
  tcprelayGuessRate: option({
    env: 'NORAY_TCPRELAY_GUESS_RATE',
    default: '10',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe:
      'Failed INITs (id taken) and messages to unknown ids per second answered to one source IP (IPv6: per /64); above it they get no ERROR (counted as guess_rate)',
  }),
  tcprelayGuessBurst: option({
    env: 'NORAY_TCPRELAY_GUESS_BURST',
    default: '50',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Failed INITs and messages to unknown ids one source IP may get answered at once before NORAY_TCPRELAY_GUESS_RATE applies',
  }),
  wsrelayGuessRate: option({
    env: 'NORAY_WSRELAY_GUESS_RATE',
    default: '2',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe:
      'Failed logins (login_client with an unknown code, login_server with a taken one) per second allowed to one source IP (IPv6: per /64); past it every login from there is refused unchecked (guess_rate)',
  }),
  wsrelayGuessBurst: option({
    env: 'NORAY_WSRELAY_GUESS_BURST',
    default: '20',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Failed logins one source IP may make at once before NORAY_WSRELAY_GUESS_RATE applies',
  }),
};

function positiveByteSize(raw: string): number {
  const bytes = parseByteSize(raw);
  if (bytes < 1 || bytes > 2 ** 31 - 1) throw new ConfigValueError('expected a size from 1b to 2gb');
  return bytes;
}
