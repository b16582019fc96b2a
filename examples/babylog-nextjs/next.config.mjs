// The repository keeps one node_modules at its root (package.json there pins @clerk/nextjs,
// next and react): tell Next where that root is.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export default {
  turbopack: { root },
  outputFileTracingRoot: root,
};
