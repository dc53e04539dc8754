// README's promises that a test can hold: the first commands, the contents, the version.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to dashes, -1/-2 for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    const heading = inCode ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const slug = (heading[1] ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

describe('README', () => {
  it('opens with the two commands, before anything else', () => {
    const firstBlocks = [...README.matchAll(/```sh\n([^`]*)```/g)].slice(0, 2).map((match) => match[1]);
    expect(firstBlocks).toEqual(['npm ci && npm start\n', 'npm ci && npm test\n']);
  });

  it('has an "is it working?" check right after them', () => {
    const check = README.indexOf('**Is it working?**');
    expect(check).toBeGreaterThan(README.indexOf('npm ci && npm test'));
    expect(check).toBeLessThan(README.indexOf('## Contents'));
    expect(README.slice(check, check + 800)).toContain('curl -s 127.0.0.1:8891/health');
    expect(README.slice(check, check + 800)).toContain("write('echo hello\\n')");
  });

  it('every link of the contents leads to a heading', () => {
    const contents = README.slice(README.indexOf('## Contents'), README.indexOf('## Configuration'));
    const links = [...contents.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1]);
    expect(links.length).toBeGreaterThan(10);
    const known = anchors(README);
    expect(links.filter((link) => !known.has(link ?? ''))).toEqual([]);
    // Every top-level section is listed.
    const sections = [...README.matchAll(/^## (.+)$/gm)].map((match) => match[1]).filter((title) => title !== 'Contents');
    for (const title of sections) expect(contents).toContain(`[${(title ?? '').split(' (')[0]}]`);
  });

  it('says which Node.js it needs, as package.json does', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20.12');
    expect(README).toContain('Node.js 20.12+');
    expect(README).not.toMatch(/Node(\.js)? 20\+|Node ≥ 22/);
  });

  it('keeps the benchmark tables in docs/performance.md, a summary here', () => {
    expect(README).not.toContain('noray benchmark (full)');
    expect(readFileSync(new URL('../docs/performance.md', import.meta.url), 'utf8')).toContain('noray benchmark (full)');
  });
});
