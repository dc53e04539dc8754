/** Turns results into the printed table, the targets verdict and an SVG chart. */
import type { ControlRow } from './control.js';
import type { MemoryResults } from './memory.js';
import type { RelayResults, Series } from './relay.js';

const k = (n: number | null | undefined) => (n === null || n === undefined ? '-' : n >= 10000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));
const pct = (n: number | null | undefined) => (n === null || n === undefined ? '-' : `${Math.round(n)}%`);
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? (a / b).toFixed(2) : '-');
const ms = (n: number | null | undefined) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(2));

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function find(series: Series[], target: string, pairs: number, size: number): Series | undefined {
  return series.find((s) => s.target === target && s.pairs === pairs && s.size === size);
}

export interface Verdict {
  pairs: number;
  rateRatio: number | null;
  perCoreRatio: number | null;
  p99Ratio: number | null;
  rateOk: boolean;
  p99Ok: boolean;
}

export function verdicts(relay: RelayResults): Verdict[] {
  const pairs = [...new Set(relay.series.map((s) => s.pairs))];
  return pairs.map((p) => {
    const noray = find(relay.series, 'noray', p, 64);
    const bare = find(relay.series, 'bare', p, 64);
    const rn = relay.rtt.find((r) => r.target === 'noray' && r.pairs === p);
    const rb = relay.rtt.find((r) => r.target === 'bare' && r.pairs === p);
    const rateRatio = noray && bare && bare.bestUnder1 ? noray.bestUnder1 / bare.bestUnder1 : null;
    const perCoreRatio = noray?.perCoreAtBest && bare?.perCoreAtBest ? noray.perCoreAtBest / bare.perCoreAtBest : null;
    const p99Ratio = rn && rb && rb.p99 > 0 ? rn.p99 / rb.p99 : null;
    return { pairs: p, rateRatio, perCoreRatio, p99Ratio, rateOk: (rateRatio ?? 0) >= 0.85, p99Ok: p99Ratio !== null && p99Ratio <= 1.2 };
  });
}

/**
 * The relay targets against the bare forwarder. A quick run (CI) takes half-second steps on a
 * shared machine: its ratios say the suite ran, not how fast noray is, so they are printed as
 * informational and never as a verdict that CI would seem to ignore.
 */
export function targetLines(list: readonly Verdict[], quick: boolean): string[] {
  const targets = 'rate >= 0.85x bare at <1% loss, p99 RTT <= 1.2x bare';
  const word = (ok: boolean) => (quick ? (ok ? 'within target' : 'below target') : ok ? 'MET' : 'NOT MET');
  const lines = [
    '',
    quick
      ? `Targets (64 B): ${targets}. Informational only in quick mode: steps this short on a shared machine do not measure speed; run \`npm run bench\` for a verdict`
      : `Targets (64 B): ${targets}`,
  ];
  for (const v of list) {
    lines.push(
      `  ${String(v.pairs).padStart(4)} pairs: rate ${v.rateRatio?.toFixed(2) ?? '-'}x ${word(v.rateOk)} (per CPU-second ${v.perCoreRatio?.toFixed(2) ?? '-'}x); p99 ${v.p99Ratio?.toFixed(2) ?? '-'}x ${word(v.p99Ok)}${quick ? ' (informational)' : ''}`,
    );
  }
  return lines;
}

/**
 * Issue 16's goals for the native engine: CPU per datagram within 1.3x of the bare C forwarder at
 * every measured rate and pair count, rate at <1% loss at least 0.9x the C forwarder's, and p99 RTT
 * no worse than the js engine's.
 */
export function nativeGoalLines(relay: RelayResults, quick: boolean): string[] {
  if (!relay.cpuCost.some((c) => c.target === 'noray-native')) return [];
  const word = (ok: boolean | null) => (ok === null ? 'not measured' : quick ? (ok ? 'within goal' : 'off goal') : ok ? 'MET' : 'NOT MET');
  const lines = ['', `Native engine goals (64 B): CPU <= 1.3x bare C, rate at <1% loss >= 0.9x bare C, p99 RTT <= js engine's${quick ? ' (informational in quick mode)' : ''}`];
  for (const c of relay.cpuCost.filter((x) => x.target === 'noray-native')) {
    const ref = relay.cpuCost.find((x) => x.target === 'native' && x.pairs === c.pairs && x.rate === c.rate);
    const r = c.usPerDatagram && ref?.usPerDatagram ? c.usPerDatagram / ref.usPerDatagram : null;
    lines.push(`  ${String(c.pairs).padStart(4)} pairs @${k(c.rate)}/s: CPU ${r?.toFixed(2) ?? '-'}x bare C ${word(r === null ? null : r <= 1.3)}`);
  }
  for (const pairs of [...new Set(relay.series.filter((s) => s.target === 'noray-native').map((s) => s.pairs))]) {
    const e = find(relay.series, 'noray-native', pairs, 64);
    const c = find(relay.series, 'native', pairs, 64);
    const r = e && c && c.bestUnder1 ? e.bestUnder1 / c.bestUnder1 : null;
    lines.push(`  ${String(pairs).padStart(4)} pairs: rate at <1% loss ${k(e?.bestUnder1)} vs bare C ${k(c?.bestUnder1)} (${r?.toFixed(2) ?? '-'}x) ${word(r === null ? null : r >= 0.9)}`);
    const re = relay.rtt.find((x) => x.target === 'noray-native' && x.pairs === pairs);
    const rj = relay.rtt.find((x) => x.target === 'noray' && x.pairs === pairs);
    const ok = re && rj ? re.p99 <= rj.p99 : null;
    lines.push(`  ${String(pairs).padStart(4)} pairs: p99 RTT native ${ms(re?.p99)} ms vs js ${ms(rj?.p99)} ms ${word(ok)}`);
  }
  return lines;
}

export function renderText(results: { meta: Record<string, unknown>; relay?: RelayResults; control?: ControlRow[]; memory?: MemoryResults }): string {
  const out: string[] = [];
  const { meta } = results;
  out.push(`noray benchmark (${String(meta.mode)}), ${String(meta.date)}, node ${String(meta.node)}, ${String(meta.cpus)} x ${String(meta.cpuModel)}; ${String(meta.pinning)}`);
  const relay = results.relay;
  if (relay) {
    out.push('', 'UDP relay, one way: best delivered rate at <1% loss (stepped offered load; "peak" = highest delivered at any loss)');
    const rows: string[][] = [];
    const keys = [...new Set(relay.series.map((s) => `${s.pairs}/${s.size}`))];
    for (const key of keys) {
      const [pairs, size] = key.split('/').map(Number) as [number, number];
      const d = find(relay.series, 'direct', pairs, size);
      const b = find(relay.series, 'bare', pairs, size);
      const n = find(relay.series, 'noray', pairs, size);
      const e = find(relay.series, 'noray-native', pairs, size);
      const c = find(relay.series, 'native', pairs, size);
      rows.push([
        String(pairs),
        `${size} B`,
        d ? `${k(d.bestUnder1)} (peak ${k(d.peak)})` : '-',
        `${k(b?.bestUnder1)} (peak ${k(b?.peak)})`,
        `${k(n?.bestUnder1)} (peak ${k(n?.peak)})`,
        ratio(n?.bestUnder1, b?.bestUnder1),
        `${pct(n?.cpuAtBest)} / ${pct(b?.cpuAtBest)}`,
        `${k(n?.perCoreAtBest)} / ${k(b?.perCoreAtBest)}`,
        ratio(n?.perCoreAtBest, b?.perCoreAtBest),
        e ? `${k(e.bestUnder1)} (peak ${k(e.peak)})` : '-',
        c ? `${k(c.bestUnder1)} (peak ${k(c.peak)})` : '-',
      ]);
    }
    out.push(
      table(['pairs', 'size', 'generator ceiling (direct)', 'bare forwarder dgram/s', 'noray relay dgram/s', 'ratio', 'server CPU noray/bare', 'dgram per CPU-s noray/bare', 'ratio/CPU', 'noray native dgram/s', 'bare C dgram/s'], rows),
    );
    if (relay.cpuCost.length) {
      out.push('', `Server CPU per delivered datagram at fixed rates (64 B, every target alternating, median of rounds), microseconds`);
      const cost = (target: string, pairs: number, rate: number) => relay.cpuCost.find((c) => c.target === target && c.pairs === pairs && c.rate === rate);
      const us = (c: { usPerDatagram: number | null } | undefined) => c?.usPerDatagram?.toFixed(2) ?? '-';
      const combos = [...new Map(relay.cpuCost.map((c) => [`${c.pairs}@${c.rate}`, { pairs: c.pairs, rate: c.rate }])).values()];
      out.push(
        table(
          ['pairs', 'rate', 'bare Node us/dgram', 'noray js us/dgram', 'noray native us/dgram', 'bare C us/dgram', 'native/C', 'js/bare', 'max loss js / native'],
          combos.map(({ pairs: p, rate }) => {
            const b = cost('bare', p, rate);
            const n = cost('noray', p, rate);
            const e = cost('noray-native', p, rate);
            const c = cost('native', p, rate);
            const loss = (x: { loss: number } | undefined) => (x ? `${(x.loss * 100).toFixed(2)}%` : '-');
            return [String(p), `${k(rate)}/s`, us(b), us(n), e ? us(e) : 'not built', c ? us(c) : 'no C compiler', ratio(e?.usPerDatagram, c?.usPerDatagram), ratio(n?.usPerDatagram, b?.usPerDatagram), `${loss(n)} / ${loss(e)}`];
          }),
        ),
      );
      out.push(...nativeGoalLines(relay, Boolean(meta.mode === 'quick')));
    }
    out.push('', `Round trip (64 B, timestamps in payload, echo at the far end), ms`);
    out.push(
      table(
        ['pairs', 'rate', 'bare p50 / p99 / p99.9', 'noray js p50 / p99 / p99.9', 'noray native p50 / p99 / p99.9', 'p99 js/bare', 'loss js', 'server CPU js/bare'],
        [...new Set(relay.rtt.map((r) => r.pairs))].map((p) => {
          const b = relay.rtt.find((r) => r.target === 'bare' && r.pairs === p);
          const n = relay.rtt.find((r) => r.target === 'noray' && r.pairs === p);
          const e = relay.rtt.find((r) => r.target === 'noray-native' && r.pairs === p);
          return [
            String(p),
            `${k(n?.rate ?? b?.rate)}/s`,
            `${ms(b?.p50)} / ${ms(b?.p99)} / ${ms(b?.p999)}`,
            `${ms(n?.p50)} / ${ms(n?.p99)} / ${ms(n?.p999)}`,
            e ? `${ms(e.p50)} / ${ms(e.p99)} / ${ms(e.p999)}` : 'not built',
            ratio(n?.p99, b?.p99),
            n ? `${(n.loss * 100).toFixed(2)}%` : '-',
            `${pct(n?.serverCpu)} / ${pct(b?.serverCpu)}`,
          ];
        }),
      ),
    );
    const sb = relay.socketBuffer;
    out.push(
      '',
      `Relay socket buffers: requested ${sb.requested} B (NORAY_UDP_RELAY_SOCKET_BUFFER=4mb); kernel reports rcvbuf ${sb.effectiveRecv ?? '?'} B, sndbuf ${sb.effectiveSend ?? '?'} B ` +
        `(Linux doubles the request for bookkeeping and caps it at net.core.rmem_max=${sb.rmemMax ?? '?'} / wmem_max=${sb.wmemMax ?? '?'}: effective ${sb.effectiveRecv ? Math.min(sb.requested, sb.effectiveRecv / 2) : '?'} B usable)`,
    );
    if (relay.limits) {
      const l = relay.limits;
      out.push(
        `Limits still enforced (128kb/s per relay, 1000 B datagrams): offered ${l.offeredPerSec}/s, delivered ${l.deliveredPerSec}/s (limit allows ~${l.expectedPerSec}/s), dropped relay_bandwidth=${l.drops.relay_bandwidth ?? 0}`,
      );
    }
    out.push(...targetLines(verdicts(relay), meta.mode === 'quick'));
  }
  if (results.control) {
    out.push('', 'Control planes (closed loop from one generator process)');
    out.push(
      table(
        ['flow', 'noray', 'bare baseline', 'ratio', 'server CPU noray/bare', 'generator CPU noray/bare', 'notes'],
        results.control.map((r) => [
          r.name,
          `${k(r.noray)} ${r.unit}`,
          `${k(r.bare)} ${r.unit}`,
          r.ratio?.toFixed(2) ?? '-',
          `${pct(r.norayCpu)} / ${pct(r.bareCpu)}`,
          `${pct(r.loadCpuNoray)} / ${pct(r.loadCpuBare)}`,
          r.note,
        ]),
      ),
    );
  }
  if (results.memory) {
    const m = results.memory;
    out.push(
      '',
      `Memory (server process, after gc): per bound relay port ${m.perBoundPort.rss} B RSS (${m.perBoundPort.heap} B heap); ` +
        `per idle relay in use +${m.perRelay.rss} B RSS (${m.perRelay.heap} B heap); per idle noray session (TCP + registered address) ${m.perSession.rss} B RSS (${m.perSession.heap} B heap). ` +
        `~${(m.idleRelaysPer100MB / 1000).toFixed(1)}k idle relays (port + state) or ~${(m.idleSessionsPer100MB / 1000).toFixed(1)}k idle sessions per 100 MB. (${m.sessions} sessions, ${m.relays} relays, ${m.ports} ports)`,
    );
  }
  return out.join('\n');
}

const COLORS: Record<string, string> = { direct: '#999999', bare: '#1f77b4', noray: '#d62728', 'noray-native': '#ff7f0e', native: '#2ca02c' };
const DASH: Record<number, string> = { 1: '', 100: '6 3', 1000: '2 3' };

/** One panel per datagram size: delivered vs offered (thousand/s) for every target and pair count. */
export function renderSvg(relay: RelayResults): string {
  const sizes = [...new Set(relay.series.map((s) => s.size))];
  const W = 460;
  const H = 340;
  const pad = { l: 55, r: 15, t: 35, b: 45 };
  const maxX = Math.max(1, ...relay.series.flatMap((s) => s.steps.map((p) => p.offered)));
  const maxY = Math.max(1, ...relay.series.flatMap((s) => s.steps.map((p) => p.deliveredPerSec)));
  const x = (v: number) => pad.l + (v / maxX) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - (v / maxY) * (H - pad.t - pad.b);
  const panels = sizes.map((size, i) => {
    const lines = relay.series
      .filter((s) => s.size === size)
      .map((s) => {
        const points = s.steps.map((p) => `${x(p.offered).toFixed(1)},${y(p.deliveredPerSec).toFixed(1)}`).join(' ');
        const lossy = s.steps
          .filter((p) => p.loss >= 0.01)
          .map((p) => `<circle cx="${x(p.offered).toFixed(1)}" cy="${y(p.deliveredPerSec).toFixed(1)}" r="3" fill="none" stroke="${COLORS[s.target]}"/>`)
          .join('');
        return `<polyline fill="none" stroke="${COLORS[s.target]}" stroke-width="2" stroke-dasharray="${DASH[s.pairs] ?? ''}" points="${points}"/>${lossy}`;
      })
      .join('\n');
    const ticks = [0, 0.25, 0.5, 0.75, 1]
      .map((f) => {
        const vx = maxX * f;
        const vy = maxY * f;
        return (
          `<line x1="${x(0)}" y1="${y(vy)}" x2="${x(maxX)}" y2="${y(vy)}" stroke="#eee"/>` +
          `<text x="${pad.l - 5}" y="${y(vy) + 4}" text-anchor="end" font-size="10">${Math.round(vy / 1000)}k</text>` +
          `<text x="${x(vx)}" y="${H - pad.b + 14}" text-anchor="middle" font-size="10">${Math.round(vx / 1000)}k</text>`
        );
      })
      .join('');
    return `<g transform="translate(${i * W},0)">
<text x="${W / 2}" y="20" text-anchor="middle" font-size="13" font-weight="bold">${size}-byte datagrams, one way</text>
${ticks}
<line x1="${x(0)}" y1="${y(0)}" x2="${x(maxX)}" y2="${y(0)}" stroke="#333"/><line x1="${x(0)}" y1="${y(0)}" x2="${x(0)}" y2="${y(maxY)}" stroke="#333"/>
<line x1="${x(0)}" y1="${y(0)}" x2="${x(Math.min(maxX, maxY))}" y2="${y(Math.min(maxX, maxY))}" stroke="#ccc" stroke-dasharray="1 3"/>
<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="11">offered datagrams/s</text>
<text x="14" y="${H / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${H / 2})">delivered datagrams/s</text>
${lines}
</g>`;
  });
  const legendItems = [
    ...Object.entries(COLORS).filter(([name]) => relay.series.some((s) => s.target === name)).map(([name, color]) => ({ label: name === 'direct' ? 'direct to sink (generator ceiling)' : name === 'bare' ? 'bare dgram forwarder' : name === 'native' ? 'bare C forwarder' : name === 'noray-native' ? 'noray native engine' : 'noray js engine', color, dash: '' })),
    ...Object.entries(DASH).map(([pairs, dash]) => ({ label: `${pairs} pair${pairs === '1' ? '' : 's'}`, color: '#333', dash })),
    { label: 'circle: loss >= 1%', color: '#333', dash: 'none' },
  ];
  // Each entry as wide as its label (about 6 px a character at 10 px) so long labels never overlap.
  const legendX: number[] = [];
  legendItems.reduce((x, item) => (legendX.push(x), x + 45 + item.label.length * 6), 20);
  const legend = legendItems
    .map((item, i) => {
      const lx = legendX[i] ?? 20;
      const mark = item.dash === 'none' ? `<circle cx="${lx + 12}" cy="${H + 15}" r="3" fill="none" stroke="#333"/>` : `<line x1="${lx}" y1="${H + 15}" x2="${lx + 25}" y2="${H + 15}" stroke="${item.color}" stroke-width="2" stroke-dasharray="${item.dash}"/>`;
      return `${mark}<text x="${lx + 30}" y="${H + 19}" font-size="10">${item.label}</text>`;
    })
    .join('');
  const legendWidth = legendItems.reduce((width, item) => width + 45 + item.label.length * 6, 40);
  const width = Math.max(W * sizes.length, legendWidth);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 35}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
${legend}
</svg>
`;
}
