// The reference pages generated from the code (docs/reference/): the configuration from
// `latchkey default-config`, the command line from clap's help, the Backend API's operations
// from the OpenAPI document a running latchkey serves, and the error codes from the sources. `generate.mjs` writes them;
// reference.test.mjs regenerates and fails when a committed page differs.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
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

const STATUS = {
  BadRequest: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, MethodNotAllowed: 405, Conflict: 409,
  Unprocessable: 422, PayloadTooLarge: 413, UnsupportedMediaType: 415, TooManyRequests: 429, Unavailable: 503, Internal: 500,
};
// The service's shorthands (crates/latchkey-service/src/error.rs) and the codes they give.
const SHORTHANDS = [
  [/\bServiceError::not_found\(|\bnot_found\("/g, 'resource_not_found', 404],
  [/\bunauthenticated\(/g, 'authentication_invalid', 401],
  [/\brate_limited\(/g, 'too_many_requests', 429],
  [/\bServiceError::internal\(\)/g, 'internal_clerk_error', 500],
  [/\bidentifier_exists\(/g, 'form_identifier_exists', 422],
  [/\bpassword_incorrect\(\)/g, 'form_password_incorrect', 422],
  [/\bcode_incorrect\(\)/g, 'form_code_incorrect', 422],
  [/\balready_verified\(\)/g, 'verification_already_verified', 400],
  [/\bServiceError::stale\(\)|\bSelf::stale\(\)/g, 'conflict', 409],
];

function rustFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? rustFiles(join(dir, e.name)) : e.name.endsWith('.rs') ? [join(dir, e.name)] : []);
}

/** Every error code the server's sources can answer, with its HTTP statuses and where. */
export function errorCodes() {
  const codes = new Map();
  const add = (code, status, file) => {
    const c = codes.get(code) ?? { statuses: new Set(), files: new Set() };
    c.statuses.add(status);
    c.files.add(file);
    codes.set(code, c);
  };
  const crates = join(root, 'crates');
  for (const crate of readdirSync(crates)) {
    const src = join(crates, crate, 'src');
    let files;
    try {
      files = rustFiles(src);
    } catch {
      continue;
    }
    for (const path of files) {
      // Test modules name codes they expect, not ones they answer.
      const text = readFileSync(path, 'utf8').split(/#\[cfg\(test\)\]/)[0];
      const file = relative(root, path);
      for (const m of text.matchAll(/ErrorKind::(\w+)(?:\s*\{[^}]*\})?\s*,\s*"([a-z][a-z0-9_]*)"/g)) add(m[2], STATUS[m[1]] ?? '?', file);
      for (const m of text.matchAll(/\b(unprocessable|bad_request)\(\s*"([a-z][a-z0-9_]*)"/g)) add(m[2], m[1] === 'unprocessable' ? 422 : 400, file);
      for (const [re, code, status] of SHORTHANDS) if (re.test(text)) add(code, status, file);
    }
  }
  return codes;
}

export function errorCodesPage() {
  const rows = [...errorCodes()].sort(([a], [b]) => a.localeCompare(b)).map(([code, { statuses, files }]) =>
    `| \`${code}\` | ${[...statuses].sort().join(', ')} | ${[...files].sort().map((f) => `\`${f}\``).join(', ')} |`);
  return `${HEADER('the server\'s sources (`crates/*/src`)')}# Error codes

Every refusal has Clerk's body: \`{"errors": [{"code", "message", "long_message", "meta"}],
"clerk_trace_id"}\` with a stable \`code\` (docs/frontend-api.md and docs/backend-api.md say which
Clerk's SDKs read). These are the codes latchkey's sources can answer, with their HTTP statuses
and the files that answer them; \`meta.param_name\` names the offending field where there is one.

| Code | Status | Where |
| --- | --- | --- |
${rows.join('\n')}
`;
}
