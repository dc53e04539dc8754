// The ops dashboard page. Compiled by `npm run build` (tsconfig.json here) to plain JS the ops
// port serves as is; it reads the server's snapshot stream and nothing else, from nowhere else.
import type uPlotType from 'uplot';
import type { DashboardSnapshot, SeriesPoint, SnapshotTable } from '../snapshot.js';

declare const uPlot: typeof uPlotType;

const TOKEN_KEY = 'noray-ops-token';
const HISTORY = 120;
const RETRY_MS = [1000, 2000, 5000];

type Child = Node | string;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing`);
  return node as T;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${unit === 0 ? integer.format(scaled) : decimal.format(scaled)} ${units[unit]}`;
}

function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

type Format = 'count' | 'bytes' | 'percent' | 'ms' | 'age' | 'rate';

function format(value: number, kind: Format): string {
  switch (kind) {
    case 'bytes':
      return bytes(value);
    case 'percent':
      return `${decimal.format(value)} %`;
    case 'ms':
      return `${decimal.format(value)} ms`;
    case 'age':
      return age(value);
    case 'rate':
      return `${decimal.format(value)}/s`;
    default:
      return integer.format(value);
  }
}

/** One figure on a card; `metric` names the /metrics series it shows (the browser test compares them). */
interface Figure {
  readonly label: string;
  readonly value: (snapshot: DashboardSnapshot) => number | null;
  readonly kind: Format;
  readonly metric?: string;
}

const metric = (name: string) => (snapshot: DashboardSnapshot) => snapshot.metrics[name] ?? null;
const fromMetric = (label: string, name: string, kind: Format = 'count'): Figure => ({ label, value: metric(name), kind, metric: name });

function freeShare(snapshot: DashboardSnapshot): number | null {
  const noray = snapshot.fronts.noray;
  if (!noray || !noray.relayPortsBound) return null;
  return (100 * (noray.relayPortsFree ?? 0)) / noray.relayPortsBound;
}

function fallbackShare(snapshot: DashboardSnapshot): number | null {
  const { pairs, fallbacks } = snapshot.punchthrough;
  return pairs === 0 ? null : (100 * fallbacks) / pairs;
}

const CARDS: ReadonlyArray<{ readonly front: string | null; readonly title: string; readonly figures: readonly Figure[] }> = [
  {
    front: 'noray',
    title: 'noray: punchthrough and relay',
    figures: [
      fromMetric('hosts', 'noray_active_hosts'),
      fromMetric('control connections', 'noray_tcp_connections'),
      fromMetric('relays in use', 'noray_relay_count'),
      fromMetric('relay ports free', 'noray_relay_ports_free'),
      { label: 'relay pool free', value: freeShare, kind: 'percent' },
      { label: 'relayed datagrams', value: (s) => s.rates.packetsPerSecond, kind: 'rate' },
      { label: 'relayed bytes', value: (s) => s.rates.bytesPerSecond, kind: 'rate' },
      fromMetric('datagrams relayed', 'noray_relay_packets_total'),
      fromMetric('bytes relayed', 'noray_relay_bytes_total', 'bytes'),
      fromMetric('connect pairs', 'noray_connect_pairs_total'),
      fromMetric('fell back to relay', 'noray_connect_relay_fallbacks_total'),
      { label: 'punchthrough failed', value: fallbackShare, kind: 'percent' },
    ],
  },
  {
    front: 'lobby',
    title: 'lobby',
    figures: [
      fromMetric('lobbies', 'noray_lobby_lobbies'),
      fromMetric('clients', 'noray_lobby_clients'),
      fromMetric('mediations', 'noray_lobby_mediations_active'),
    ],
  },
  {
    front: 'wsrelay',
    title: 'wsrelay',
    figures: [
      fromMetric('rooms', 'noray_wsrelay_rooms'),
      fromMetric('phones', 'noray_wsrelay_clients'),
      fromMetric('connections', 'noray_wsrelay_connections'),
    ],
  },
  {
    front: 'tcprelay',
    title: 'tcprelay',
    figures: [fromMetric('clients', 'noray_tcprelay_ids'), fromMetric('connections', 'noray_tcprelay_connections')],
  },
  {
    front: null,
    title: 'process',
    figures: [
      { label: 'CPU', value: (s) => s.process.cpuPercent, kind: 'percent' },
      { label: 'memory (RSS)', value: (s) => s.process.rssBytes, kind: 'bytes' },
      { label: 'heap used', value: (s) => s.process.heapUsedBytes, kind: 'bytes' },
      { label: 'event loop p50', value: (s) => s.process.eventLoopDelayMs.p50, kind: 'ms' },
      { label: 'event loop p99', value: (s) => s.process.eventLoopDelayMs.p99, kind: 'ms' },
      { label: 'event loop max', value: (s) => s.process.eventLoopDelayMs.max, kind: 'ms' },
      { label: 'uptime', value: (s) => s.node.uptimeSeconds, kind: 'age' },
    ],
  },
];

/** Labelled series of one metric (`name{a="x"}` keys) as rows of label values and a count. */
function labelled(snapshot: DashboardSnapshot, name: string, labels: readonly string[]): Array<{ cells: string[]; value: number; key: string }> {
  const rows: Array<{ cells: string[]; value: number; key: string }> = [];
  for (const [key, value] of Object.entries(snapshot.metrics)) {
    if (!key.startsWith(`${name}{`)) continue;
    const found = new Map([...key.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1] ?? '', match[2] ?? '']));
    rows.push({ cells: labels.map((label) => found.get(label) ?? ''), value, key });
  }
  return rows.filter((row) => row.value > 0).sort((a, b) => b.value - a.value);
}

class Dashboard {
  private token: string | null = sessionStorage.getItem(TOKEN_KEY);
  private search = '';
  private abort: AbortController | null = null;
  private retry = 0;
  private retryTimer: number | null = null;
  private last: DashboardSnapshot | null = null;
  private chart: uPlotType | null = null;
  private readonly points: SeriesPoint[] = [];

  start(): void {
    byId<HTMLFormElement>('login').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = byId<HTMLInputElement>('token');
      this.token = input.value.trim();
      input.value = '';
      sessionStorage.setItem(TOKEN_KEY, this.token);
      this.connect();
    });
    byId('logout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      this.token = null;
      this.abort?.abort();
      this.showLogin('');
    });
    let debounce: number | null = null;
    byId<HTMLInputElement>('search').addEventListener('input', (event) => {
      const value = (event.target as HTMLInputElement).value.slice(0, 100);
      if (debounce !== null) clearTimeout(debounce);
      debounce = window.setTimeout(() => {
        this.search = value;
        this.connect();
      }, 250);
    });
    this.connect();
  }

  private headers(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private connect(): void {
    this.abort?.abort();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const abort = (this.abort = new AbortController());
    const url = `dashboard/stream?search=${encodeURIComponent(this.search)}`;
    fetch(url, { headers: this.headers(), signal: abort.signal, cache: 'no-store' })
      .then(async (response) => {
        if (response.status === 401) {
          this.showLogin(this.token ? 'That token was refused.' : '');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        this.hideLogin();
        await this.read(response.body, abort);
      })
      .catch((error: unknown) => {
        if (abort.signal.aborted) return;
        this.disconnected(error instanceof Error ? error.message : String(error));
      });
  }

  private async read(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data !== '') this.update(JSON.parse(data) as DashboardSnapshot);
      }
    }
    if (!abort.signal.aborted) this.disconnected('the server closed the stream');
  }

  private disconnected(why: string): void {
    const delay = RETRY_MS[Math.min(this.retry, RETRY_MS.length - 1)] ?? 5000;
    this.retry++;
    document.body.classList.add('stale');
    const since = this.last ? new Date(this.last.at).toLocaleTimeString() : 'never';
    byId('status').textContent = 'disconnected';
    byId('status').className = 'badge down';
    byId('banner').hidden = false;
    byId('banner').textContent = `Disconnected from the server (${why}). Figures below are from ${since}. Retrying in ${delay / 1000}s…`;
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  private showLogin(message: string): void {
    byId('login-panel').hidden = false;
    byId('main').hidden = true;
    byId('login-error').textContent = message;
    byId<HTMLInputElement>('token').focus();
  }

  private hideLogin(): void {
    byId('login-panel').hidden = true;
    byId('main').hidden = false;
  }

  private update(snapshot: DashboardSnapshot): void {
    this.last = snapshot;
    this.retry = 0;
    document.body.classList.remove('stale');
    byId('banner').hidden = true;
    byId('status').textContent = 'live';
    byId('status').className = 'badge up';
    byId('node').textContent = snapshot.node.clustered ? `node ${snapshot.node.id}` : 'single node';
    byId('updated').textContent = `updated ${new Date(snapshot.at).toLocaleTimeString()}`;
    byId('logout').hidden = this.token === null;
    this.renderCards(snapshot);
    this.renderChart(snapshot.series);
    this.renderCounts(snapshot);
    this.renderNodes(snapshot);
    this.renderTables(snapshot);
  }

  private renderCards(snapshot: DashboardSnapshot): void {
    const cards = CARDS.filter((card) => card.front === null || card.front in snapshot.fronts).map((card) =>
      el(
        'section',
        { class: 'card', 'data-front': card.front ?? 'process' },
        el('h2', {}, card.title),
        el(
          'dl',
          {},
          ...card.figures.flatMap((figure) => {
            const value = figure.value(snapshot);
            const attrs: Record<string, string> = { 'data-value': value === null ? '' : String(value) };
            if (figure.metric) attrs['data-metric'] = figure.metric;
            return [el('dt', {}, figure.label), el('dd', attrs, value === null ? '–' : format(value, figure.kind))];
          }),
        ),
      ),
    );
    byId('cards').replaceChildren(...cards);
  }

  private renderChart(series: readonly SeriesPoint[]): void {
    this.points.push(...series);
    if (this.points.length > HISTORY) this.points.splice(0, this.points.length - HISTORY);
    const data: uPlotType.AlignedData = [
      this.points.map((point) => point.t),
      this.points.map((point) => point.packetsPerSecond),
      this.points.map((point) => point.bytesPerSecond),
    ];
    const target = byId('chart');
    if (!this.chart) {
      this.chart = new uPlot(
        {
          width: Math.max(320, target.clientWidth),
          height: 220,
          series: [
            {},
            { label: 'datagrams/s', stroke: '#2563eb', scale: 'packets' },
            { label: 'bytes/s', stroke: '#db2777', scale: 'bytes', value: (_u, value) => (value == null ? '–' : bytes(value) + '/s') },
          ],
          axes: [{}, { scale: 'packets' }, { scale: 'bytes', side: 1, grid: { show: false }, values: (_u, ticks) => ticks.map((tick) => bytes(tick)) }],
        },
        data,
        target,
      );
      window.addEventListener('resize', () => this.chart?.setSize({ width: Math.max(320, target.clientWidth), height: 220 }));
    } else this.chart.setData(data);
  }

  private renderCounts(snapshot: DashboardSnapshot): void {
    const table = (title: string, name: string, labels: readonly string[]) => {
      const rows = labelled(snapshot, name, labels);
      return el(
        'section',
        { class: 'card' },
        el('h2', {}, title),
        rows.length === 0
          ? el('p', { class: 'empty' }, 'none')
          : el(
              'table',
              {},
              el('thead', {}, el('tr', {}, ...labels.map((label) => el('th', {}, label)), el('th', { class: 'num' }, 'count'))),
              el(
                'tbody',
                {},
                ...rows.map((row) =>
                  el(
                    'tr',
                    {},
                    ...row.cells.map((cell) => el('td', {}, cell)),
                    el('td', { class: 'num', 'data-metric': row.key, 'data-value': String(row.value) }, integer.format(row.value)),
                  ),
                ),
              ),
            ),
      );
    };
    byId('counts').replaceChildren(
      table('Relay drops by reason', 'noray_relay_drop_count', ['reason']),
      table('Limit rejections', 'noray_limit_rejections_total', ['front', 'reason']),
    );
  }

  private renderNodes(snapshot: DashboardSnapshot): void {
    const section = byId('nodes');
    section.hidden = !snapshot.node.clustered;
    if (!snapshot.node.clustered) return;
    const columns: Array<[string, string, Format]> = [
      ['noray.hosts', 'hosts', 'count'],
      ['noray.relays', 'relays', 'count'],
      ['packetsPerSecond', 'datagrams/s', 'rate'],
      ['bytesPerSecond', 'bytes/s', 'rate'],
      ['lobby.lobbies', 'lobbies', 'count'],
      ['wsrelay.rooms', 'rooms', 'count'],
      ['tcprelay.ids', 'tcprelay clients', 'count'],
      ['cpuPercent', 'CPU', 'percent'],
      ['rssBytes', 'RSS', 'bytes'],
    ];
    section.replaceChildren(
      el('h2', {}, `Nodes (${snapshot.nodes.length})`),
      el(
        'table',
        {},
        el('thead', {}, el('tr', {}, el('th', {}, 'node'), ...columns.map(([, label]) => el('th', { class: 'num' }, label)), el('th', {}, 'seen'))),
        el(
          'tbody',
          {},
          ...snapshot.nodes.map((node) =>
            el(
              'tr',
              node.nodeId === snapshot.node.id ? { class: 'self' } : {},
              el('td', {}, node.nodeId),
              ...columns.map(([key, , kind]) => {
                const value = node.figures[key];
                return el('td', { class: 'num' }, value === undefined ? '–' : format(value, kind));
              }),
              el('td', {}, `${Math.max(0, Math.round((snapshot.at - node.at) / 1000))}s ago`),
            ),
          ),
        ),
      ),
    );
  }

  private renderTables(snapshot: DashboardSnapshot): void {
    byId('tables').replaceChildren(...snapshot.tables.map((table) => this.renderTable(table, snapshot.node.actions)));
  }

  private renderTable(table: SnapshotTable, actions: boolean): HTMLElement {
    const action = actions ? table.action : undefined;
    const shown = table.rows.length < table.total ? `${table.rows.length} of ${table.total}` : String(table.total);
    const head = el('tr', {}, ...table.columns.map((column) => el('th', column.kind === 'text' ? {} : { class: 'num' }, column.name)));
    if (action) head.append(el('th', {}, ''));
    const rows = table.rows.map((row) => {
      const tr = el(
        'tr',
        {},
        ...row.map((cell, index) => {
          const kind = table.columns[index]?.kind ?? 'text';
          if (typeof cell === 'string') return el('td', {}, cell);
          return el('td', { class: 'num' }, format(cell, kind === 'text' ? 'count' : kind));
        }),
      );
      if (action) {
        const button = el('button', { type: 'button', class: 'danger', 'data-action': action.name }, action.label);
        button.addEventListener('click', () => void this.act(table.front, action.name, String(row[0]), action.label));
        tr.append(el('td', {}, button));
      }
      return tr;
    });
    return el(
      'section',
      { class: 'card wide', 'data-table': `${table.front}.${table.id}` },
      el('h2', {}, `${table.title} `, el('span', { class: 'muted' }, `(${table.front}, ${shown})`)),
      rows.length === 0
        ? el('p', { class: 'empty' }, this.search ? 'no match' : 'none')
        : el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)),
    );
  }

  private async act(front: string, action: string, key: string, label: string): Promise<void> {
    if (!window.confirm(`${label} ${key}?`)) return;
    const notice = byId('notice');
    try {
      const response = await fetch('dashboard/action', {
        method: 'POST',
        headers: { ...this.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ front, action, key }),
      });
      const body = (await response.json()) as { outcome?: string; error?: string };
      notice.textContent = response.ok ? `${label} ${key}: ${body.outcome ?? 'done'}` : `${label} ${key} failed: ${body.error ?? response.status}`;
    } catch (error) {
      notice.textContent = `${label} ${key} failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}

new Dashboard().start();
