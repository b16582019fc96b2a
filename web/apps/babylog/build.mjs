// Builds BabyLog into dist/ (which the latchkey binary embeds). With --check, builds into a
// temporary directory instead and fails unless every file equals the committed dist/ byte for
// byte, so the embedded app always matches its sources.
import { build } from 'esbuild';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');
const out = check ? await mkdtemp(join(tmpdir(), 'babylog-')) : join(here, 'dist');

if (!check) await rm(out, { recursive: true, force: true });
await cp(join(here, 'static'), out, { recursive: true });
await build({
  entryPoints: [join(here, 'src/main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

if (check) {
  const committed = join(here, 'dist');
  const names = (await readdir(out)).sort();
  const existing = (await readdir(committed).catch(() => [])).sort();
  const stale = [];
  if (names.join() !== existing.join()) stale.push(`files: built [${names}] vs committed [${existing}]`);
  for (const name of names) {
    const fresh = await readFile(join(out, name));
    const kept = await readFile(join(committed, name)).catch(() => null);
    if (!kept || !fresh.equals(kept)) stale.push(name);
  }
  await rm(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`web/apps/babylog/dist is stale (${stale.join(', ')}): run \`npm run build --workspace babylog\` and commit dist/`);
    process.exit(1);
  }
  console.log(`web/apps/babylog/dist matches a fresh build (${names.length} files)`);
}
