import { describePorts } from '../../config/load.js';
import { isDescriptorExhaustion, openFileAdvice, type RelayPortBudget } from '../../core/open-files.js';
import type { BindFailure } from '../../core/relay/port-pool.js';

/** What became of binding the relay ports: nothing to say, one warning, or a reason not to start. */
export type RelayBindingOutcome =
  | { readonly kind: 'complete' }
  | { readonly kind: 'partial' | 'fatal'; readonly message: string; readonly fields: Record<string, unknown> };

export interface RelayBindingFacts {
  readonly configuredPorts: readonly number[];
  readonly budget: RelayPortBudget;
  readonly bound: number;
  readonly failures: readonly BindFailure[];
  readonly minPorts: number;
}

function exhausted(failure: BindFailure): boolean {
  return isDescriptorExhaustion({ code: failure.code }) || /\b(EMFILE|ENFILE)\b/.test(failure.error);
}

/**
 * One message for everything that kept relay ports unbound (the open-file budget, descriptors
 * running out anyway, ports taken or refused), and whether the server may start with what it has.
 */
export function relayBindingOutcome(facts: RelayBindingFacts): RelayBindingOutcome {
  const { budget, bound, failures, minPorts } = facts;
  const configured = budget.configured;
  if (bound >= configured) return { kind: 'complete' };

  const reasons: string[] = [];
  const descriptorsShort = budget.bind < configured || failures.some(exhausted);
  if (budget.bind < configured && budget.limit !== null) {
    reasons.push(
      `the open-file limit (ulimit -n ${budget.limit}) leaves room for ${budget.bind} of them, ` +
        `keeping ${budget.reserve} descriptors for connections`,
    );
  }
  const outOfFiles = failures.find(exhausted);
  if (outOfFiles !== undefined) {
    reasons.push(
      `the process ran out of file descriptors (${outOfFiles.code ?? 'EMFILE'}) at port ${outOfFiles.port}; ` +
        'binding stopped there and some ports were closed again to keep descriptors for connections',
    );
  }
  const refused = failures.filter((failure) => !exhausted(failure));
  if (refused.length > 0) {
    const shown = refused.slice(0, 3).map((failure) => failure.error).join(', ');
    reasons.push(`${refused.length} could not be bound (${shown}${refused.length > 3 ? ', ...' : ''})`);
  }
  if (reasons.length === 0) reasons.push(`${configured - bound} were not bound`);
  const advice =
    [
      ...(descriptorsShort ? [openFileAdvice(configured)] : []),
      ...(refused.length > 0 ? ['free the ports that are taken or choose another NORAY_UDP_RELAY_PORTS range'] : []),
    ].join('; ') || 'narrow NORAY_UDP_RELAY_PORTS';
  const fields = {
    relayPorts: { bound, configured, budget: budget.bind, minimum: minPorts },
    openFileLimit: budget.limit,
    reserve: budget.reserve,
    failures: failures.slice(0, 5),
  };
  const range = describePorts(facts.configuredPorts);
  const portsText = `NORAY_UDP_RELAY_PORTS: ${typeof range === 'string' ? range : range.join(', ')}`;

  if (bound === 0) {
    return {
      kind: 'fatal',
      fields,
      message:
        `no relay port could be bound (${portsText}): ${reasons.join('; ')}. ` +
        `To start, ${advice}, or set NORAY_UDP_RELAY_PORTS=off to run without the UDP relay`,
    };
  }
  if (bound < minPorts) {
    return {
      kind: 'fatal',
      fields,
      message:
        `only ${bound} of ${configured} relay ports could be bound, fewer than NORAY_UDP_RELAY_MIN_PORTS=${minPorts}: ` +
        `${reasons.join('; ')}. To start, ${advice}, or lower NORAY_UDP_RELAY_MIN_PORTS`,
    };
  }
  return {
    kind: 'partial',
    fields,
    message: `bound ${bound} of ${configured} relay ports: ${reasons.join('; ')}. To relay for more players, ${advice}`,
  };
}
