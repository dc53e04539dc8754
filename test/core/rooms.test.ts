// The in-process Room that lobby chat routes through. The relays' rooms (RoomStore) have their
// contract suite in contracts/rooms.test.ts.
import { describe, expect, it } from 'vitest';
import { Room, type Member } from '../../src/core/rooms.js';

interface TestMember extends Member<string> {
  got: Array<[string, string | null]>;
  releasedCount: number;
}

function member(id: string): TestMember {
  const m: TestMember = {
    id,
    got: [],
    releasedCount: 0,
    deliver(message, sender) {
      m.got.push([message, sender?.id ?? null]);
    },
    released() {
      m.releasedCount++;
    },
  };
  return m;
}

const room = (owner: Member<string> | null = member('srv')) => new Room<string>('R', owner);

describe('Room', () => {
  it('broadcasts to members, not the owner, in order', () => {
    const owner = member('srv');
    const r = room(owner);
    const a = member('1');
    const b = member('2');
    r.join(a);
    r.join(b);
    expect(r.broadcast('x')).toBe(2);
    expect(r.broadcast('y')).toBe(2);
    expect(a.got).toEqual([
      ['x', null],
      ['y', null],
    ]);
    expect(b.got.map(([m]) => m)).toEqual(['x', 'y']);
    expect(owner.got).toEqual([]);
  });

  it('passes the sender along to the owner', () => {
    const owner = member('srv');
    const r = room(owner);
    const a = member('7');
    r.join(a);
    expect(r.toOwner('hi', a)).toBe(true);
    expect(owner.got).toEqual([['hi', '7']]);
  });

  it('delivers to every member with an id; ids may repeat', () => {
    const r = room();
    const a1 = member('a');
    const a2 = member('a');
    const b = member('b');
    for (const m of [a1, a2, b]) expect(r.join(m)).toBe('joined');
    expect(r.toId('a', 'm')).toBe(2);
    expect(r.toId('zzz', 'm')).toBe(0);
    expect(a1.got).toHaveLength(1);
    expect(a2.got).toHaveLength(1);
    expect(b.got).toHaveLength(0);
    r.leave(a1);
    expect(r.toId('a', 'n')).toBe(1);
    expect(a2.got.map(([m]) => m)).toEqual(['m', 'n']);
  });

  it('refuses a second holder of an id when ids are unique', () => {
    const r = new Room<string>('dir', null, { uniqueIds: true });
    const a = member('x');
    const b = member('x');
    expect(r.join(a)).toBe('joined');
    expect(r.join(b)).toBe('id-taken');
    expect(r.join(a)).toBe('joined');
    expect(r.size).toBe(1);
    // Removal checks the member object: the refused one cannot remove the holder.
    expect(r.leave(b)).toBe(false);
    expect(r.hasId('x')).toBe(true);
    expect(r.leave(a)).toBe(true);
    expect(r.hasId('x')).toBe(false);
    expect(r.join(b)).toBe('joined');
    expect(r.toOwner('m', a)).toBe(false);
  });

  it('closing releases every member once and tells whoever registered for it', () => {
    const closed: string[] = [];
    const r = new Room<string>('R', member('srv'), {}, (c) => closed.push(c.code));
    const ms = [member('1'), member('2'), member('2')];
    for (const m of ms) r.join(m);
    r.close();
    expect(ms.map((m) => m.releasedCount)).toEqual([1, 1, 1]);
    expect(closed).toEqual(['R']);
    expect(r.closed).toBe(true);
    expect(r.size).toBe(0);
    expect(r.join(member('3'))).toBe('closed');
    expect(r.leave(ms[0]!)).toBe(false);
    expect(r.broadcast('late')).toBe(0);
    r.close();
    expect(ms.map((m) => m.releasedCount)).toEqual([1, 1, 1]);
    expect(closed).toEqual(['R']);
  });

  it('never throws on the delivery path and keeps delivering to the others', () => {
    const r = room();
    const bad: Member<string> = {
      id: 'bad',
      deliver() {
        throw new Error('boom');
      },
      released() {
        throw new Error('boom');
      },
    };
    const good = member('good');
    r.join(bad);
    r.join(good);
    expect(r.broadcast('x')).toBe(1);
    expect(r.toId('bad', 'y')).toBe(0);
    expect(good.got).toHaveLength(1);
    expect(r.deliveryFailures).toBe(2);
    expect(() => r.close()).not.toThrow();
  });

  it('tolerates members leaving during a fan-out', () => {
    const r = room();
    const got: string[] = [];
    const ms: Member<string>[] = [];
    for (let i = 0; i < 5; i++) {
      const m: Member<string> = {
        id: String(i),
        deliver() {
          got.push(m.id);
          // Each member that receives drops the next one, as a slow-reader disconnect would.
          const next = ms[i + 1];
          if (next) r.leave(next);
        },
      };
      ms.push(m);
      r.join(m);
    }
    r.broadcast('x');
    expect(got).toEqual(['0', '2', '4']);
    expect(r.size).toBe(3);
  });
});
