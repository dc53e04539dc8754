/** Tiny request/response RPC over the Node IPC channel, used between the runner and its child processes. */

export interface RpcRequest {
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

export interface RpcResponse {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

export type Handler = (params: never) => unknown;

/** In a child: answer requests from the parent; exits when the parent goes away. */
export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('must run as a child process with an IPC channel');
  const send = (response: RpcResponse) => process.send?.(response);
  process.on('message', (raw: RpcRequest) => {
    const handler = handlers[raw.method];
    if (!handler) {
      send({ id: raw.id, error: `unknown method ${raw.method}` });
      return;
    }
    Promise.resolve()
      .then(() => (handler as (params: unknown) => unknown)(raw.params))
      .then(
        (result) => send({ id: raw.id, result: result ?? null }),
        (error: unknown) => send({ id: raw.id, error: error instanceof Error ? error.stack ?? error.message : String(error) }),
      );
  });
  // The parent died or closed the channel: never linger.
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 0, result: 'ready' });
}
