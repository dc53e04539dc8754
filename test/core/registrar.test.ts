import { describe, expect, it } from 'vitest';
import { AddressRegistrar } from '../../src/core/registrar.js';

interface S {
  readonly name: string;
}

function setup() {
  const sessions = new Map<string, S>([
    ['secret-a', { name: 'a' }],
    ['secret-b', { name: 'b' }],
  ]);
  const registrar = new AddressRegistrar<S>((secret) => sessions.get(secret));
  const a = sessions.get('secret-a') as S;
  const b = sessions.get('secret-b') as S;
  return { sessions, registrar, a, b };
}

describe('AddressRegistrar', () => {
  it('an unknown secret is "unknown" and stores nothing', () => {
    const { registrar } = setup();
    expect(registrar.register('nope', { address: '1.2.3.4', port: 5 })).toEqual({ outcome: 'unknown' });
    expect(registrar.register('', { address: '1.2.3.4', port: 5 })).toEqual({ outcome: 'unknown' });
    expect(registrar.size).toBe(0);
  });

  it('the first registration is "registered" and sets the endpoint', () => {
    const { registrar, a } = setup();
    expect(registrar.endpointOf(a)).toBeUndefined();
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5000 })).toEqual({
      outcome: 'registered',
      session: a,
      endpoint: { address: '1.2.3.4', port: 5000 },
    });
    expect(registrar.endpointOf(a)).toEqual({ address: '1.2.3.4', port: 5000 });
    expect(registrar.size).toBe(1);
  });

  it('the same endpoint again is "repeat" and changes nothing', () => {
    const { registrar, a } = setup();
    registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    const stored = registrar.endpointOf(a);
    const again = registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    expect(again).toEqual({ outcome: 'repeat', session: a, endpoint: { address: '1.2.3.4', port: 5000 } });
    expect(registrar.endpointOf(a)).toBe(stored);
    expect(registrar.size).toBe(1);
  });

  it('a new port or a new address is "moved", and the latest wins', () => {
    const { registrar, a } = setup();
    registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5001 })).toMatchObject({
      outcome: 'moved',
      endpoint: { address: '1.2.3.4', port: 5001 },
    });
    expect(registrar.endpointOf(a)).toEqual({ address: '1.2.3.4', port: 5001 });
    expect(registrar.register('secret-a', { address: '5.6.7.8', port: 5001 })).toMatchObject({
      outcome: 'moved',
      endpoint: { address: '5.6.7.8', port: 5001 },
    });
    expect(registrar.endpointOf(a)).toEqual({ address: '5.6.7.8', port: 5001 });
    // Back to an earlier endpoint is a move too, not a repeat.
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5000 }).outcome).toBe('moved');
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5000 }).outcome).toBe('repeat');
    expect(registrar.size).toBe(1);
  });

  it('keeps sessions apart, even on the same endpoint', () => {
    const { registrar, a, b } = setup();
    registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    expect(registrar.register('secret-b', { address: '1.2.3.4', port: 5000 }).outcome).toBe('registered');
    registrar.register('secret-b', { address: '9.9.9.9', port: 1 });
    expect(registrar.endpointOf(a)).toEqual({ address: '1.2.3.4', port: 5000 });
    expect(registrar.endpointOf(b)).toEqual({ address: '9.9.9.9', port: 1 });
    expect(registrar.size).toBe(2);
  });

  it('stores a copy: changing the caller’s object changes nothing', () => {
    const { registrar, a } = setup();
    const endpoint = { address: '1.2.3.4', port: 5000 };
    registrar.register('secret-a', endpoint);
    endpoint.port = 1;
    expect(registrar.endpointOf(a)).toEqual({ address: '1.2.3.4', port: 5000 });
  });

  it('forget drops the endpoint; the next registration is "registered" again', () => {
    const { registrar, a, b } = setup();
    registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    registrar.register('secret-b', { address: '1.2.3.4', port: 5001 });
    registrar.forget(a);
    expect(registrar.endpointOf(a)).toBeUndefined();
    expect(registrar.endpointOf(b)).toBeDefined();
    expect(registrar.size).toBe(1);
    registrar.forget(a); // twice is harmless
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5000 }).outcome).toBe('registered');
  });

  it('resolves secrets at registration time: a session that is gone is unknown', () => {
    const { registrar, sessions, a } = setup();
    registrar.register('secret-a', { address: '1.2.3.4', port: 5000 });
    sessions.delete('secret-a');
    registrar.forget(a);
    expect(registrar.register('secret-a', { address: '1.2.3.4', port: 5000 })).toEqual({ outcome: 'unknown' });
    const c: S = { name: 'c' };
    sessions.set('secret-c', c);
    expect(registrar.register('secret-c', { address: '::1', port: 7 })).toMatchObject({ outcome: 'registered', session: c });
  });
});
