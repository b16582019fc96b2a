// docs/reference/ matches the code: each page regenerated from the binary the tests use and
// compared with the committed one (`node scripts/docs/generate.mjs` writes them).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { backendApiPage, cliPage, configurationPage, errorCodes, errorCodesPage } from './reference.mjs';
import { root } from './runnable.mjs';

let latchkey;
before(async () => {
  latchkey = await startLatchkey();
});
after(() => latchkey?.stop());

const committed = (name) => readFileSync(join(root, 'docs/reference', name), 'utf8');
const fresh = 'is stale: run `node scripts/docs/generate.mjs` and commit docs/reference/';

test('docs/reference/configuration.md is `latchkey default-config`', () => {
  assert.equal(committed('configuration.md'), configurationPage(), `configuration.md ${fresh}`);
});

test('docs/reference/cli.md is the help of every command', () => {
  assert.equal(committed('cli.md'), cliPage(), `cli.md ${fresh}`);
});

test('docs/reference/error-codes.md lists the codes the sources answer', () => {
  const codes = errorCodes();
  for (const code of ['form_password_incorrect', 'session_reverification_required', 'delete_self_not_enabled', 'resource_not_found', 'authentication_invalid']) {
    assert.ok(codes.has(code), `${code} found in the sources`);
  }
  assert.equal(committed('error-codes.md'), errorCodesPage(), `error-codes.md ${fresh}`);
});

test('docs/reference/backend-api.md lists every operation of /v1/openapi.json', async () => {
  const page = await backendApiPage(latchkey.url);
  assert.ok(page.split('\n').filter((l) => l.startsWith('| `')).length > 50, 'the operations are listed');
  assert.equal(committed('backend-api.md'), page, `backend-api.md ${fresh}`);
});
