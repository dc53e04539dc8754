import { isDescriptorExhaustion, suggestedOpenFileLimit } from '../core/open-files.js';

/** What to do wherever descriptors run out: which limit to raise, or which range to narrow. */
export function openFileAdvice(relayPorts: number): string {
  const limit = suggestedOpenFileLimit(relayPorts);
  return `raise the open-file limit (ulimit -n ${limit}, LimitNOFILE=${limit} in systemd) or narrow NORAY_UDP_RELAY_PORTS`;
}

const REPORT_EVERY_MS = 60_000;

/**
 * A listener out of descriptors fails every accept (libuv sheds the connection and tells us each
 * time): pass the first EMFILE/ENFILE of a minute on with what to do, count the rest, and pass
 * every other error on as it is.
 */
export function throttleDescriptorErrors(
  onError: (error: Error) => void,
  options: { relayPorts?: number; now?: () => number } = {},
): (error: Error) => void {
  const now = options.now ?? Date.now;
  let quietUntil = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (error) => {
    if (!isDescriptorExhaustion(error)) {
      onError(error);
      return;
    }
    const at = now();
    if (at < quietUntil) {
      suppressed++;
      return;
    }
    quietUntil = at + REPORT_EVERY_MS;
    const repeats = suppressed > 0 ? ` (${suppressed} more in the last minute)` : '';
    suppressed = 0;
    const hint = new Error(
      `${error.message}: out of file descriptors, new connections are dropped${repeats}; ${openFileAdvice(options.relayPorts ?? 0)}`,
      { cause: error },
    );
    onError(Object.assign(hint, { code: error.code }));
  };
}
