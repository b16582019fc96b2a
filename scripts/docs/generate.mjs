// Writes docs/reference/ from the code (see reference.mjs). Run after changing a setting, a
// command or a Backend API operation: `cargo build -p latchkey && node scripts/docs/generate.mjs`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { backendApiPage, cliPage, configurationPage, errorCodesPage } from './reference.mjs';
import { root } from './runnable.mjs';

const dir = join(root, 'docs/reference');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'configuration.md'), configurationPage());
writeFileSync(join(dir, 'cli.md'), cliPage());
writeFileSync(join(dir, 'error-codes.md'), errorCodesPage());
const latchkey = await startLatchkey();
try {
  writeFileSync(join(dir, 'backend-api.md'), await backendApiPage(latchkey.url));
} finally {
  await latchkey.stop();
}
console.log(`wrote ${dir}/{configuration,cli,error-codes,backend-api}.md`);
