import type { AddressBook } from '../../core/address-book.js';
import type { Clock } from '../../core/clock.js';
import type { UdpRelayEngine } from '../../core/relay/engine.js';
import { ageSeconds, collectRows, type ActionOutcome, type FrontTable, type Inspectable, type TableQuery } from '../inspection.js';
import type { ControlServer } from './control-server.js';
import type { NorayCommands } from './handlers.js';

/** The noray front on the dashboard: this process's hosts (never a PrivateID), and ending a host's session. */
export class NorayInspection implements Inspectable {
  constructor(
    private readonly commands: NorayCommands,
    private readonly addresses: AddressBook,
    private readonly relay: UdpRelayEngine | null,
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
    const hosts = await Promise.all(
      rows.map(async ([oid, age]) => {
        const sessionId = sessionIds.get(String(oid));
        const endpoint = sessionId === undefined ? undefined : await this.addresses.endpointOf(sessionId);
        const usage = endpoint && this.relay?.usageOf(endpoint);
        return [String(oid), Number(age), usage?.relays ?? 0, usage?.bytes ?? 0];
      }),
    );
    return [
      {
        id: 'hosts',
        title: 'Hosts',
        columns: [
          { name: 'OpenID', kind: 'text' },
          { name: 'age', kind: 'age' },
          { name: 'relays', kind: 'count' },
          { name: 'relayed bytes', kind: 'bytes' },
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
