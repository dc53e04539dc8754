/**
 * What a front shows of its live state on the ops dashboard, and what an operator may do to it.
 * Tables hold public names only (OpenIDs, room codes, lobby names), never a secret.
 */

export type CellKind = 'text' | 'count' | 'bytes' | 'age';

export interface TableColumn {
  readonly name: string;
  readonly kind: CellKind;
}

export type TableCell = string | number;
export type TableRow = readonly TableCell[];

export interface FrontTable {
  /** Stable within the front ('hosts'): the dashboard's key for the table. */
  readonly id: string;
  readonly title: string;
  readonly columns: readonly TableColumn[];
  /** The first cell of each row is its key, the one an action is applied to. */
  readonly rows: readonly TableRow[];
  /** Rows matching the query; `rows` holds at most the query's limit of them. */
  readonly total: number;
  /** What an operator can do to a row, when the front has such an action. */
  readonly action?: { readonly name: string; readonly label: string };
}

export interface TableQuery {
  /** Case-insensitive substring of any text cell; '' matches every row. */
  readonly search: string;
  readonly limit: number;
}

export type ActionOutcome = 'done' | 'not_found' | 'unknown_action';

/** The part of a front the dashboard reads; fronts without live tables leave it out. */
export interface Inspectable {
  tables(query: TableQuery): Promise<readonly FrontTable[]>;
  act(action: string, key: string): Promise<ActionOutcome>;
}

/** Keeps the rows of `items` matching the query, up to its limit, and counts every match. */
export function collectRows<T>(items: Iterable<T>, toRow: (item: T) => TableRow, query: TableQuery): { rows: TableRow[]; total: number } {
  const needle = query.search.trim().toLowerCase();
  const rows: TableRow[] = [];
  let total = 0;
  for (const item of items) {
    const row = toRow(item);
    if (needle !== '' && !row.some((cell) => typeof cell === 'string' && cell.toLowerCase().includes(needle))) continue;
    total++;
    if (rows.length < query.limit) rows.push(row);
  }
  return { rows, total };
}

/** Whole seconds since `since`, never negative. */
export function ageSeconds(now: number, since: number): number {
  return Math.max(0, Math.floor((now - since) / 1000));
}
