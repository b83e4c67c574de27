import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
const anchors = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));

t.test('every runbook_url in the alert rules points at a README section that exists', async (t) => {
  const dir = new URL('deploy/prometheus/rules/', root);
  const links = readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .flatMap((f) => [...readFileSync(new URL(f, dir), 'utf8').matchAll(/runbook_url: \S*README\.md#([a-z0-9-]+)/g)].map((m) => ({ file: f, anchor: m[1]! })));
  t.ok(links.length >= 10, 'the rules link runbooks');
  for (const { file, anchor } of links) t.ok(anchors.has(anchor), `${file}: README has #${anchor}`);
});

t.test('the quick start is exactly two commands', async (t) => {
  const quick = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = quick.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  t.equal(commands.length, 2);
  t.match(commands[0], /^\.\/vtpm-agent check/);
  t.match(commands[1], /^npm test/);
});
