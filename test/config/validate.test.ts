import { describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { ConfigError, configWith, resolveConfig } from '../../src/config/load.js';
import { configProblems } from '../../src/config/validate.js';

describe('config validated as a whole', () => {
  it('accepts the defaults', () => {
    expect(configProblems(configWith({}))).toEqual([]);
  });

  it('finds two TCP listeners on one port when their hosts overlap', () => {
    const problems = configProblems(configWith({ wsrelayPort: 8890 }));
    expect(problems).toEqual(['NORAY_SOCKET_PORT and NORAY_WSRELAY_PORT both want TCP port 8890: give each its own']);
    expect(configProblems(configWith({ socketHost: '127.0.0.1', wsrelayHost: '127.0.0.2', wsrelayPort: 8890 }))).toEqual([]);
    expect(configProblems(configWith({ socketHost: '127.0.0.1', wsrelayHost: '0.0.0.0', wsrelayPort: 8890 }))).toHaveLength(1);
  });

  it('finds relay ports overlapping the registrar or the lobby UDP port, and ignores port 0 and ports that are off', () => {
    const problems = configProblems(configWith({ udpRegistrarPort: 49160, lobbyUdpPort: 49152 }));
    expect(problems).toEqual([
      'NORAY_UDP_REGISTRAR_PORT and NORAY_UDP_RELAY_PORTS both want UDP port 49160: give each its own',
      'NORAY_UDP_RELAY_PORTS and NORAY_LOBBY_UDP_PORT both want UDP port 49152: give each its own',
    ]);
    expect(configProblems(configWith({ socketPort: 0, wsrelayPort: 0, udpRelayPorts: [0, 0] }))).toEqual([]);
    expect(configProblems(configWith({ udpRelayPorts: null, udpRegistrarPort: 49152 }))).toEqual([]);
    // A TCP and a UDP listener may share a number.
    expect(configProblems(configWith({ socketPort: 8809 }))).toEqual([]);
  });

  it('finds the STUN alt port on the registrar port', () => {
    expect(configProblems(configWith({ stunAltPort: 8809 }))).toEqual([
      'NORAY_UDP_REGISTRAR_PORT and NORAY_STUN_ALT_PORT both want UDP port 8809: give each its own',
    ]);
    expect(configProblems(configWith({ stunAltPort: 3478 }))).toEqual([]);
  });

  it('shortens a long overlap', () => {
    const [problem] = configProblems(configWith({ udpRelayPorts: Array.from({ length: 10 }, (_, i) => 5990 + i) }));
    expect(problem).toContain('UDP port 5990');
    const [wide] = configProblems(configWith({ lobbyUdpPort: 49152, udpRegistrarPort: 8809, udpRelayPorts: [49152, 49153, 49154, 49155] }));
    expect(wide).toContain('49152');
  });

  it('finds a relay port minimum above the ports configured', () => {
    expect(configProblems(configWith({ udpRelayPorts: [0, 0], udpRelayMinPorts: 3 }))).toEqual([
      'NORAY_UDP_RELAY_MIN_PORTS=3 is more than the 2 ports of NORAY_UDP_RELAY_PORTS: lower the minimum or configure more ports',
    ]);
    expect(configProblems(configWith({ udpRelayPorts: [0, 0], udpRelayMinPorts: 2 }))).toEqual([]);
    expect(configProblems(configWith({ udpRelayPorts: null, udpRelayMinPorts: 5 }))).toEqual([]);
  });

  it('finds an OpenID space too small for the sessions, and guessable PrivateIDs', () => {
    const [oid] = configProblems(configWith({ oidCharset: 'ab', oidLength: 4, maxSessions: 100 }));
    expect(oid).toContain('too few OpenIDs for NORAY_MAX_SESSIONS=100');
    expect(configProblems(configWith({ oidCharset: 'abcdefghij', oidLength: 6, maxSessions: 1000 }))).toEqual([]);
    const [pid] = configProblems(configWith({ pidCharset: 'ab', pidLength: 32 }));
    expect(pid).toContain('guessable');
  });

  it('stops the start with a ConfigError naming the options, from the loader and from the App', () => {
    expect(() => resolveConfig({ env: { NORAY_WSRELAY_PORT: '8890' } })).toThrow(ConfigError);
    expect(() => resolveConfig({ env: { NORAY_WSRELAY_PORT: '8890' } })).toThrow(/NORAY_SOCKET_PORT and NORAY_WSRELAY_PORT/);
    expect(() => new App({ config: configWith({ tcprelayPort: 8891 }), processMetrics: false })).toThrow(
      /NORAY_HTTP_PORT and NORAY_TCPRELAY_PORT/,
    );
  });
});
