// Every guide in docs/guides/ runs as a reader would paste it: its runnable blocks in order,
// against a fresh latchkey, each exiting 0 and printing what the guide shows (runnable.mjs).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { root, runGuide, runnableBlocks, outputMatches } from './runnable.mjs';

// The guides, and README.md's tour.
const dir = join(root, 'docs/guides');
const guides = ['../../README.md', ...readdirSync(dir).filter((f) => f.endsWith('.md') && f !== 'README.md').sort()];

test('the runner: blocks and outputs are found, wildcards match, a wrong output or a failing command fails', async () => {
  const md = '```sh runnable\nA=1\necho "a $A"\n```\n```text output\na …\n```\n```sh\nnot run\n```\n```sh runnable\necho "b $A"\nfalse\n```\n';
  assert.deepEqual(runnableBlocks(md).map((b) => [b.code, b.expected]), [['A=1\necho "a $A"\n', 'a …\n'], ['echo "b $A"\nfalse\n', null]]);
  assert.ok(outputMatches('x\n…\nz\n', 'x\ny1\ny2\nz\n'));
  assert.ok(!outputMatches('x …\n', 'y 1\n'));
  const { failures } = await runGuide(md, { url: 'http://127.0.0.1:9', secretKey: 'sk', publishableKey: 'pk' });
  assert.equal(failures.length, 1, failures.join('\n'));
  assert.match(failures[0], /line 11 exited 1:\nb 1/);
  const wrong = await runGuide('```sh runnable\necho two\n```\n```text output\none\n```\n', { url: 'http://127.0.0.1:9', secretKey: 'sk', publishableKey: 'pk' });
  assert.match(wrong.failures[0], /printed something else/);
});

for (const name of guides) {
  test(`${name.replace('../../', '')} runs as written`, async () => {
    const markdown = readFileSync(join(dir, name), 'utf8');
    assert.ok(runnableBlocks(markdown).length > 0, `${name} has no runnable block`);
    const latchkey = await startLatchkey();
    try {
      const { failures } = await runGuide(markdown, latchkey);
      assert.deepEqual(failures, []);
    } finally {
      await latchkey.stop();
    }
  });
}
