// A plain web app on its own loopback port that self-hosts the pinned @clerk/clerk-js and
// @clerk/ui bundles and reaches latchkey through Clerk's own same-origin Frontend API proxy
// (`clerkFrontendApiProxy` from @clerk/backend/proxy, the code behind @clerk/nextjs's
// `frontendApiProxy`) at `/__clerk` — the deployment docs/frontend-api.md §2 describes.
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { clerkFrontendApiProxy } from '@clerk/backend/proxy';

// The repository's one node_modules (package.json at the root pins every version).
const distOf = (pkg) => resolve(import.meta.dirname, '../../node_modules', pkg, 'dist');
const mounts = {
  '/clerk/': distOf('@clerk/clerk-js'),
  '/ui/': distOf('@clerk/ui'),
  // latchkey-js's ESM build (built by `npm run test:latchkey-js`) and the Dexie it imports, for
  // pages that sync (sync-page.html maps the bare 'dexie' import here).
  '/latchkey-js/': resolve(import.meta.dirname, '../../web/packages/latchkey-js/dist'),
  '/dexie/': distOf('dexie'),
};
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.json': 'application/json' };

function serveFile(res, file) {
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size });
  createReadStream(file).pipe(res);
}

async function proxy(req, res, { origin, fapiUrl, publishableKey, secretKey }) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const hasBody = !['GET', 'HEAD'].includes(req.method);
  const request = new Request(origin + req.url, { method: req.method, headers, body: hasBody ? Buffer.concat(chunks) : undefined });
  const answer = await clerkFrontendApiProxy(request, { publishableKey, secretKey, fapiUrl });
  const out = {};
  answer.headers.forEach((v, k) => {
    if (k !== 'set-cookie') out[k] = v;
  });
  const cookies = answer.headers.getSetCookie();
  if (cookies.length) out['set-cookie'] = cookies;
  res.writeHead(answer.status, out);
  // Streamed as it comes, as Next.js does: the sync API's live events are a response that
  // never ends.
  if (!answer.body) return res.end();
  const stream = Readable.fromWeb(answer.body);
  res.on('close', () => stream.destroy());
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

// `pages` maps a path to a function returning the HTML of that page.
// `port` 0 takes any free one; a test that must name the app's origin in latchkey's
// configuration (allowed_origins) picks it first. `hostname` is the host of the app's origin
// (the server listens on 127.0.0.1 either way): WebAuthn refuses an IP address as a
// relying-party id, so a passkey test loads its pages at `http://localhost:PORT`.
export function startAppServer({ latchkey, pages, port = 0, hostname = '127.0.0.1' }) {
  return new Promise((ok) => {
    const ctx = { fapiUrl: latchkey.url, publishableKey: latchkey.publishableKey, secretKey: latchkey.secretKey };
    const server = createServer(async (req, res) => {
      try {
        const path = new URL(req.url, 'http://x').pathname;
        if (path === '/__clerk' || path.startsWith('/__clerk/')) return await proxy(req, res, ctx);
        for (const [prefix, dir] of Object.entries(mounts)) {
          if (!path.startsWith(prefix)) continue;
          const file = normalize(join(dir, path.slice(prefix.length)));
          if (file.startsWith(dir) && existsSync(file) && statSync(file).isFile()) return serveFile(res, file);
        }
        const page = pages[path];
        if (page) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
          return res.end(page(ctx));
        }
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e?.stack ?? e));
      }
    });
    server.listen(port, '127.0.0.1', () => {
      ctx.origin = `http://${hostname}:${server.address().port}`;
      ok({ ...ctx, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    });
  });
}

export const readPage = (name) => readFileSync(join(import.meta.dirname, name), 'utf8');
