// The guides' runnable blocks (docs/guides/*.md), run as a reader would paste them.
//
// A block fenced as ```sh runnable``` is run; the blocks of one guide run in order in one bash
// (variables set in one block are there in the next), in an empty working directory, against a
// freshly started latchkey whose address replaces the guides' `127.0.0.1:4000`. Its secret and
// publishable keys are in `LATCHKEY_SECRET_KEY` and `LATCHKEY_PUBLISHABLE_KEY`, as the guides
// tell the reader to set them from what latchkey printed at first start, and its data directory
// and database in `LATCHKEY_DATA_DIR` and `LATCHKEY_DATABASE_URL`, so `latchkey keys …` and
// `latchkey backup` reach it as they would next to a running instance. A block fenced as
// ```text output``` right after a runnable block is what that block must print: `…` stands for
// any text within a line, and a line holding only `…` for any number of lines.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');
const GUIDE_ADDRESS = '127.0.0.1:4000';

/** The runnable blocks of a guide, each with the output it must print (or null), in order. */
export function runnableBlocks(markdown) {
  const blocks = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```\s*$/gm;
  let m;
  let last = null;
  while ((m = fence.exec(markdown))) {
    const info = m[1].trim().split(/\s+/);
    const line = markdown.slice(0, m.index).split('\n').length;
    if (info[0] === 'sh' && info.includes('runnable')) {
      last = { code: m[2], expected: null, line };
      blocks.push(last);
    } else if (info[0] === 'text' && info.includes('output') && last && last.expected === null) {
      last.expected = m[2];
    } else {
      last = null;
    }
  }
  return blocks;
}

/** Whether `actual` matches `expected` with its `…` wildcards. */
export function outputMatches(expected, actual) {
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const lines = expected.trimEnd().split('\n').map((l) => (l.trim() === '…' ? '(?:[^\\n]*\\n)*?' : `${l.split('…').map(escape).join('[^\\n]*')}\\n`));
  return new RegExp(`^${lines.join('')}$`).test(`${actual.trimEnd()}\n`);
}

/**
 * Runs one guide's blocks against `latchkey` ({url, secretKey, publishableKey}); resolves with
 * a list of failures (empty when every block exited 0 and printed what the guide shows).
 */
export async function runGuide(markdown, latchkey, { timeoutMs = 120_000 } = {}) {
  const blocks = runnableBlocks(markdown);
  const work = mkdtempSync(join(tmpdir(), 'latchkey-guide-'));
  // The packages a guide has the reader install (`npm install latchkey-js dexie …`) are the
  // repository's pinned ones: ESM imports resolve through node_modules, not NODE_PATH.
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
  const host = new URL(latchkey.url).host;
  const here = (text) => text.replaceAll(GUIDE_ADDRESS, host);
  // One shell, so a block's variables reach the next; `set -e` stops at the first failing
  // command, and the exit trap records which block it was in.
  const script = ['set -o pipefail', 'current=none', "trap 'echo $? > .rc-$current' EXIT", 'exec 3>&1 4>&2'];
  blocks.forEach((b, i) => {
    writeFileSync(join(work, `.block-${i}.sh`), here(b.code));
    script.push(`current=${i}; exec 1>.out-${i} 2>&1; set -e; . ./.block-${i}.sh; set +e; exec 1>&3 2>&4; echo 0 > .rc-${i}`);
  });
  script.push('current=done');
  // `latchkey` is the binary the tests use; `python3` the test venv's (PyJWT) once it exists.
  const bin = dirname(process.env.LATCHKEY_BIN ?? join(root, 'target/debug/latchkey'));
  const venv = join(root, 'target/py-venv/bin');
  const env = {
    ...process.env,
    PATH: `${bin}:${existsSync(venv) ? `${venv}:` : ''}${process.env.PATH}`,
    LATCHKEY_SECRET_KEY: latchkey.secretKey,
    LATCHKEY_PUBLISHABLE_KEY: latchkey.publishableKey,
    // `require('@clerk/backend')` and the like find the repository's pinned npm packages, as
    // they would in an app that installed them.
    NODE_PATH: join(root, 'node_modules'),
    // The command line reaches the running instance's data, as on the machine it runs on.
    ...(latchkey.dataDir
      ? { LATCHKEY_DATA_DIR: latchkey.dataDir, LATCHKEY_DATABASE_URL: `sqlite://${latchkey.dataDir}/latchkey.db` }
      : {}),
  };
  const code = await new Promise((ok) => {
    // Its own process group: whatever a guide left running in the background goes with it.
    const child = spawn('bash', ['-c', script.join('\n')], { cwd: work, env, stdio: 'ignore', detached: true });
    const killAll = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(killAll, timeoutMs);
    child.on('exit', (c, signal) => {
      clearTimeout(timer);
      killAll();
      ok(signal ? `killed (${signal}) after ${timeoutMs / 1000} s` : c);
    });
  });
  const failures = [];
  blocks.forEach((b, i) => {
    const rcFile = join(work, `.rc-${i}`);
    if (!existsSync(rcFile)) return;
    const out = readFileSync(join(work, `.out-${i}`), 'utf8');
    const rc = readFileSync(rcFile, 'utf8').trim();
    if (rc !== '0') failures.push(`the block at line ${b.line} exited ${rc}:\n${out}`);
    else if (b.expected !== null && !outputMatches(here(b.expected), out)) {
      failures.push(`the block at line ${b.line} printed something else than the guide shows:\n--- the guide\n${here(b.expected)}--- printed\n${out}`);
    }
  });
  if (code !== 0 && failures.length === 0) failures.push(`the guide's shell ended with ${code}`);
  return { blocks: blocks.length, failures };
}
