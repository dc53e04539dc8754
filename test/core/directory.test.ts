import { describe, expect, it } from 'vitest';
import { SessionDirectory, type Session } from '../../src/core/directory.js';

interface TestSession extends Session {
  readonly name: string;
}

function session(publicId: string, secret: string, name = publicId): TestSession {
  return { publicId, secret, name };
}

describe('SessionDirectory', () => {
  it('starts empty', () => {
    const directory = new SessionDirectory<TestSession>();
    expect(directory.size).toBe(0);
    expect(directory.byPublicId('a')).toBeUndefined();
    expect(directory.bySecret('a')).toBeUndefined();
    expect(directory.isTaken('a')).toBe(false);
  });

  it('finds an added session by public id and by secret', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid-a', 'pid-a');
    expect(directory.add(a)).toBe(true);
    expect(directory.byPublicId('oid-a')).toBe(a);
    expect(directory.bySecret('pid-a')).toBe(a);
    expect(directory.isTaken('oid-a')).toBe(true);
    expect(directory.size).toBe(1);
    // The two namespaces are separate.
    expect(directory.byPublicId('pid-a')).toBeUndefined();
    expect(directory.bySecret('oid-a')).toBeUndefined();
    expect(directory.isTaken('pid-a')).toBe(false);
  });

  it('refuses a taken public id and leaves the holder in place', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid', 'pid-a');
    const b = session('oid', 'pid-b');
    directory.add(a);
    expect(directory.add(b)).toBe(false);
    expect(directory.byPublicId('oid')).toBe(a);
    expect(directory.bySecret('pid-b')).toBeUndefined();
    expect(directory.size).toBe(1);
  });

  it('refuses a taken secret and leaves the holder in place', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid-a', 'pid');
    const b = session('oid-b', 'pid');
    directory.add(a);
    expect(directory.add(b)).toBe(false);
    expect(directory.bySecret('pid')).toBe(a);
    expect(directory.byPublicId('oid-b')).toBeUndefined();
    expect(directory.isTaken('oid-b')).toBe(false);
  });

  it('refuses the same session twice', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid', 'pid');
    expect(directory.add(a)).toBe(true);
    expect(directory.add(a)).toBe(false);
    expect(directory.size).toBe(1);
  });

  it('removes a session from both maps', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid', 'pid');
    directory.add(a);
    expect(directory.remove(a)).toBe(true);
    expect(directory.byPublicId('oid')).toBeUndefined();
    expect(directory.bySecret('pid')).toBeUndefined();
    expect(directory.isTaken('oid')).toBe(false);
    expect(directory.size).toBe(0);
    expect(directory.remove(a)).toBe(false);
  });

  it('remove checks identity: an equal-looking session does not remove the listed one', () => {
    const directory = new SessionDirectory<TestSession>();
    const listed = session('oid', 'pid', 'listed');
    const impostor = session('oid', 'pid', 'impostor');
    directory.add(listed);
    expect(directory.remove(impostor)).toBe(false);
    expect(directory.byPublicId('oid')).toBe(listed);
    expect(directory.bySecret('pid')).toBe(listed);
    expect(directory.size).toBe(1);
  });

  it('a stale session cannot remove the one that took its public id later', () => {
    const directory = new SessionDirectory<TestSession>();
    const old = session('oid', 'pid-old');
    directory.add(old);
    directory.remove(old);
    const next = session('oid', 'pid-new');
    expect(directory.add(next)).toBe(true);
    expect(directory.remove(old)).toBe(false);
    expect(directory.byPublicId('oid')).toBe(next);
    expect(directory.bySecret('pid-new')).toBe(next);
  });

  it('frees both ids for reuse after remove', () => {
    const directory = new SessionDirectory<TestSession>();
    const a = session('oid', 'pid');
    directory.add(a);
    directory.remove(a);
    const b = session('oid', 'pid', 'b');
    expect(directory.add(b)).toBe(true);
    expect(directory.bySecret('pid')).toBe(b);
  });

  it('keeps many sessions apart', () => {
    const directory = new SessionDirectory<TestSession>();
    const sessions = Array.from({ length: 1000 }, (_, i) => session(`oid-${i}`, `pid-${i}`));
    for (const s of sessions) expect(directory.add(s)).toBe(true);
    expect(directory.size).toBe(1000);
    for (const s of sessions) {
      expect(directory.byPublicId(s.publicId)).toBe(s);
      expect(directory.bySecret(s.secret)).toBe(s);
    }
    for (const s of sessions.filter((_, i) => i % 2 === 0)) expect(directory.remove(s)).toBe(true);
    expect(directory.size).toBe(500);
    sessions.forEach((s, i) => expect(directory.byPublicId(s.publicId)).toBe(i % 2 === 0 ? undefined : s));
  });
});
