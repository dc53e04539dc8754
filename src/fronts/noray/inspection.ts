import type { AddressBook } from '../../core/address-book.js';
import type { Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { RelayEngine } from '../../core/relay/engine.js';
import { ageSeconds, collectRows, type ActionOutcome, type FrontTable, type Inspectable, type TableQuery } from '../inspection.js';
import type { ControlServer } from './control-server.js';
import type { NorayCommands } from './handlers.js';

/** The noray front on the dashboard: this process's hosts (never a PrivateID), and ending a host's session. */
export class NorayInspection implements Inspectable {
  constructor(
    private readonly commands: NorayCommands,
    private readonly addresses: AddressBook,
    private readonly relay: RelayEngine | null,
    private readonly control: ControlServer,
    private readonly clock: Clock,
  ) {}

  async tables(query: TableQuery): Promise<readonly FrontTable[]> {
    const now = this.clock.now();
    const sessionIds = new Map<string, string>();
    const { rows, total } = collectRows(
      this.commands.localSessions(),
      ({ session, since }) => {
        sessionIds.set(session.publicId, session.id);
        return [session.publicId, ageSeconds(now, since)];
      },
      query,
    );
    // Relay figures only for the rows shown: in a cluster each endpoint is a Redis read.
    const endpoints = await Promise.all(
      rows.map(async ([oid]) => {
        const sessionId = sessionIds.get(String(oid));
        return sessionId === undefined ? undefined : this.addresses.endpointOf(sessionId);
      }),
    );
    const known = endpoints.filter((endpoint): endpoint is Endpoint => endpoint !== undefined);
    const usage = this.relay?.usage(known) ?? [];
    const usageByEndpoint = new Map(known.map((endpoint, index) => [endpoint, usage[index]]));
    const hosts = rows.map(([oid, age], index) => {
      const endpoint = endpoints[index];
      const used = endpoint && usageByEndpoint.get(endpoint);
      return [String(oid), Number(age), used?.relays ?? 0, used?.bytes ?? 0];
    });
    return [
      {
        id: 'hosts',
        title: 'Hosts',
        columns: [
          { name: 'OpenID', kind: 'text' },
          { name: 'age', kind: 'age' },
          { name: 'relays', kind: 'count' },
          { name: 'bytes relayed to it', kind: 'bytes' },
        ],
        rows: hosts,
        total,
        action: { name: 'end-session', label: 'End session' },
      },
    ];
  }

  async act(action: string, key: string): Promise<ActionOutcome> {
    if (action !== 'end-session') return 'unknown_action';
    for (const { session } of this.commands.localSessions()) {
      if (session.publicId === key) return this.control.disconnect(session.connection) ? 'done' : 'not_found';
    }
    return 'not_found';
  }
}
