import { describe, expect, it } from 'vitest';
import { Room, Rooms, type Member } from '../../src/core/rooms.js';

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

describe('Rooms', () => {
  it('opens a room per unique code and refuses a taken code', () => {
    const rooms = new Rooms<string>();
    const a = rooms.open('SNEK', member('srv'));
    expect(a).toBeDefined();
    expect(rooms.open('SNEK', member('srv2'))).toBeUndefined();
    expect(rooms.get('SNEK')).toBe(a);
    expect(rooms.open('snek', member('srv3'))).toBeDefined();
    expect(rooms.stats()).toEqual({ rooms: 2, members: 0 });
  });

  it('broadcasts to members, not the owner, in order', () => {
    const rooms = new Rooms<string>();
    const owner = member('srv');
    const room = rooms.open('R', owner)!;
    const a = member('1');
    const b = member('2');
    room.join(a);
    room.join(b);
    expect(room.broadcast('x')).toBe(2);
    expect(room.broadcast('y')).toBe(2);
    expect(a.got).toEqual([
      ['x', null],
      ['y', null],
    ]);
    expect(b.got.map(([m]) => m)).toEqual(['x', 'y']);
    expect(owner.got).toEqual([]);
  });

  it('passes the sender along to the owner', () => {
    const rooms = new Rooms<string>();
    const owner = member('srv');
    const room = rooms.open('R', owner)!;
    const a = member('7');
    room.join(a);
    expect(room.toOwner('hi', a)).toBe(true);
    expect(owner.got).toEqual([['hi', '7']]);
  });

  it('delivers to every member with an id; ids may repeat', () => {
    const room = new Rooms<string>().open('R', member('srv'))!;
    const a1 = member('a');
    const a2 = member('a');
    const b = member('b');
    for (const m of [a1, a2, b]) expect(room.join(m)).toBe('joined');
    expect(room.toId('a', 'm')).toBe(2);
    expect(room.toId('zzz', 'm')).toBe(0);
    expect(a1.got).toHaveLength(1);
    expect(a2.got).toHaveLength(1);
    expect(b.got).toHaveLength(0);
    room.leave(a1);
    expect(room.toId('a', 'n')).toBe(1);
    expect(a2.got.map(([m]) => m)).toEqual(['m', 'n']);
  });

  it('refuses a second holder of an id when ids are unique', () => {
    const room = new Room<string>('dir', null, { uniqueIds: true });
    const a = member('x');
    const b = member('x');
    expect(room.join(a)).toBe('joined');
    expect(room.join(b)).toBe('id-taken');
    expect(room.join(a)).toBe('joined');
    expect(room.size).toBe(1);
    // Removal checks the member object: the refused one cannot remove the holder.
    expect(room.leave(b)).toBe(false);
    expect(room.hasId('x')).toBe(true);
    expect(room.leave(a)).toBe(true);
    expect(room.hasId('x')).toBe(false);
    expect(room.join(b)).toBe('joined');
    expect(room.toOwner('m', a)).toBe(false);
  });

  it('closing releases every member and frees the code', () => {
    const rooms = new Rooms<string>();
    const room = rooms.open('R', member('srv'))!;
    const ms = [member('1'), member('2'), member('2')];
    for (const m of ms) room.join(m);
    expect(rooms.stats()).toEqual({ rooms: 1, members: 3 });
    expect(rooms.close('R')).toBe(true);
    expect(ms.map((m) => m.releasedCount)).toEqual([1, 1, 1]);
    expect(rooms.stats()).toEqual({ rooms: 0, members: 0 });
    expect(room.closed).toBe(true);
    expect(room.join(member('3'))).toBe('closed');
    expect(room.leave(ms[0]!)).toBe(false);
    expect(room.broadcast('late')).toBe(0);
    room.close();
    expect(ms.map((m) => m.releasedCount)).toEqual([1, 1, 1]);
    const again = rooms.open('R', member('srv2'));
    expect(again).toBeDefined();
    // An old room closing late must not unregister the new holder of its code.
    room.close();
    expect(rooms.get('R')).toBe(again);
  });

  it('never throws on the delivery path and keeps delivering to the others', () => {
    const room = new Rooms<string>().open('R', member('srv'))!;
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
    room.join(bad);
    room.join(good);
    expect(room.broadcast('x')).toBe(1);
    expect(room.toId('bad', 'y')).toBe(0);
    expect(good.got).toHaveLength(1);
    expect(room.deliveryFailures).toBe(2);
    expect(() => room.close()).not.toThrow();
  });

  it('tolerates members leaving during a fan-out', () => {
    const room = new Rooms<string>().open('R', member('srv'))!;
    const got: string[] = [];
    const ms: Member<string>[] = [];
    for (let i = 0; i < 5; i++) {
      const m: Member<string> = {
        id: String(i),
        deliver() {
          got.push(m.id);
          // Each member that receives drops the next one, as a slow-reader disconnect would.
          const next = ms[i + 1];
          if (next) room.leave(next);
        },
      };
      ms.push(m);
      room.join(m);
    }
    room.broadcast('x');
    expect(got).toEqual(['0', '2', '4']);
    expect(room.size).toBe(3);
  });

  it('closeAll leaves nothing behind', () => {
    const rooms = new Rooms<string>();
    for (let i = 0; i < 100; i++) {
      const room = rooms.open(`r${i}`, member('srv'))!;
      for (let j = 0; j < 3; j++) room.join(member(String(j)));
    }
    expect(rooms.stats()).toEqual({ rooms: 100, members: 300 });
    rooms.closeAll();
    expect(rooms.stats()).toEqual({ rooms: 0, members: 0 });
  });
});
