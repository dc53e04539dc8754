import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/core/address-policy.js';
import { ManualClock } from '../../src/core/clock.js';
import { ConnectionGate } from '../../src/core/limits/connection-gate.js';
import { TokenBucket } from '../../src/core/limits/token-bucket.js';

describe('TokenBucket', () => {
  it('allows the burst at once, then the rate', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 3, clock);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    clock.advance(100);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    clock.advance(10_000);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });

  it('never admits more than burst + rate * elapsed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }), (steps) => {
        const clock = new ManualClock();
        const bucket = new TokenBucket(20, 5, clock);
        let admitted = 0;
        let elapsed = 0;
        for (const step of steps) {
          clock.advance(step);
          elapsed += step;
          if (bucket.take()) admitted++;
        }
        return admitted <= 5 + Math.floor((20 * elapsed) / 1000) + 1;
      }),
    );
  });
});

describe('ConnectionGate', () => {
  it('caps per IP and in total, and frees on release', () => {
    const gate = new ConnectionGate(3, 2);
    expect(gate.admit('1.1.1.1')).toBe('ok');
    expect(gate.admit('1.1.1.1')).toBe('ok');
    expect(gate.admit('1.1.1.1')).toBe('per_ip');
    expect(gate.admit('2.2.2.2')).toBe('ok');
    expect(gate.admit('3.3.3.3')).toBe('total');
    gate.release('1.1.1.1');
    expect(gate.admit('3.3.3.3')).toBe('ok');
    for (const ip of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) gate.release(ip);
    expect(gate.size).toBe(0);
    expect(gate.sources).toBe(0);
    gate.release('9.9.9.9');
    expect(gate.size).toBe(0);
  });

  it('counts an IPv6 /64 as one source, and a mapped IPv4 address as its IPv4 address', () => {
    const gate = new ConnectionGate(10, 2);
    expect(gate.admit('2001:db8:1:2::1')).toBe('ok');
    expect(gate.admit('2001:db8:1:2:ffff::9')).toBe('ok');
    expect(gate.admit('2001:db8:1:2:abcd:1:2:3')).toBe('per_ip');
    expect(gate.admit('2001:db8:1:3::1')).toBe('ok');
    expect(gate.admit('::ffff:1.2.3.4')).toBe('ok');
    expect(gate.admit('1.2.3.4')).toBe('ok');
    expect(gate.admit('1.2.3.4')).toBe('per_ip');
    gate.release('2001:db8:1:2:ffff::9');
    expect(gate.admit('2001:db8:1:2::77')).toBe('ok');
    expect(gate.sources).toBe(3);
  });
});

describe('AddressPolicy', () => {
  const deny = new AddressPolicy(true);
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.10.10',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:192.168.0.1',
    'not-an-ip',
  ])('denies %s', (address) => {
    expect(deny.allows(address)).toBe(false);
  });

  it.each(['8.8.8.8', '172.32.0.1', '1.2.3.4', '2001:4860:4860::8888', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(deny.allows(address)).toBe(true);
  });

  it('allows everything when off', () => {
    expect(new AddressPolicy(false).allows('127.0.0.1')).toBe(true);
  });
});
