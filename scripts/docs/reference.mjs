// The reference pages generated from the code (docs/reference/): the configuration from
// `latchkey default-config`, the command line from clap's help, and the Backend API's
// operations from the OpenAPI document a running latchkey serves. `generate.mjs` writes them;
// reference.test.mjs regenerates and fails when a committed page differs.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './runnable.mjs';

export const binary = () => process.env.LATCHKEY_BIN ?? join(root, 'target', 'debug', 'latchkey');
const run = (...args) => execFileSync(binary(), args, { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
const HEADER = (source) => `<!-- Generated from ${source} by \`node scripts/docs/generate.mjs\`; the test command fails when it is stale. -->\n\n`;

export function configurationPage() {
  return `${HEADER('`latchkey default-config`')}# Configuration reference

Every setting of \`latchkey.toml\`, with its default, as \`latchkey default-config\` prints it.
Layers: defaults, then \`latchkey.toml\` (or \`--config\`), then \`LATCHKEY_*\` environment variables
(nested keys with \`__\`: \`LATCHKEY_RATE_LIMITS__ENABLED=false\`), then flags.

\`\`\`toml
${run('default-config').trimEnd()}
\`\`\`
`;
}

/** Every command with subcommands, depth first: [['keys'], ['keys', 'secret'], …]. */
function commands(path = []) {
  const help = run(...path, '--help');
  const section = help.split(/^Commands:\n/m)[1]?.split(/\n\n/)[0] ?? '';
  const names = [...section.matchAll(/^ {2}([a-z][a-z0-9-]*)\s/gm)].map((m) => m[1]).filter((n) => n !== 'help');
  return [{ path, help }, ...names.flatMap((n) => commands([...path, n]))];
}

export function cliPage() {
  const parts = commands().map(({ path, help }) => `## \`latchkey${path.map((p) => ` ${p}`).join('')}\`\n\n\`\`\`text\n${help.trimEnd()}\n\`\`\`\n`);
  return `${HEADER("clap's `--help` of every command")}# Command-line reference\n\n${parts.join('\n')}`;
}

/** The operations of `/v1/openapi.json`, by path. */
export async function backendApiPage(latchkeyUrl) {
  const doc = await (await fetch(`${latchkeyUrl}/v1/openapi.json`)).json();
  const rows = [];
  for (const [path, ops] of Object.entries(doc.paths).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [method, op] of Object.entries(ops)) {
      if (!['get', 'post', 'patch', 'put', 'delete'].includes(method)) continue;
      rows.push(`| \`${method.toUpperCase()}\` | \`${path}\` | ${op.operationId ? `\`${op.operationId}\`` : ''} | ${(op.summary ?? '').replaceAll('|', '\\|')} |`);
    }
  }
  return `${HEADER('`GET /v1/openapi.json`')}# Backend API reference

The operations latchkey serves under \`/v1\` with a secret key (\`Authorization: Bearer sk_live_…\`),
in Clerk's shapes (docs/backend-api.md). A running latchkey serves the whole document, schemas
included, at \`/v1/openapi.json\`.

| Method | Path | Operation | Summary |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}
