/**
 * Where each node of a cluster posts its headline figures, so that the dashboard of any node can
 * show every node. One process posts to itself.
 */
export interface NodeFigures {
  readonly nodeId: string;
  /** When the figures were taken (ms since the epoch). */
  readonly at: number;
  readonly figures: Readonly<Record<string, number>>;
}

export interface NodeBoard {
  /** Replaces this node's figures; they are dropped when not posted again within the board's ttl. */
  post(figures: NodeFigures): Promise<void>;
  /** The latest figures of every live node, this one's included, by node id. */
  read(): Promise<NodeFigures[]>;
}

/** One process: the board holds its own figures only. */
export class MemoryNodeBoard implements NodeBoard {
  private latest: NodeFigures | null = null;

  async post(figures: NodeFigures): Promise<void> {
    this.latest = figures;
  }

  async read(): Promise<NodeFigures[]> {
    return this.latest ? [this.latest] : [];
  }
}

/** A posted figure set from another node, checked before it reaches a page: bounded, numbers only. */
export function parseNodeFigures(text: string, maxFigures = 200): NodeFigures | undefined {
  if (text.length > 64 * 1024) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { nodeId, at, figures } = value as Record<string, unknown>;
  if (typeof nodeId !== 'string' || typeof at !== 'number' || typeof figures !== 'object' || figures === null) return undefined;
  const entries = Object.entries(figures as Record<string, unknown>).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]),
  );
  return { nodeId, at, figures: Object.fromEntries(entries.slice(0, maxFigures)) };
}
