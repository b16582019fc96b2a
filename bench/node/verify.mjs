// The official @clerk/backend verifyToken with a networkless jwtKey, on the tokens the Rust
// benchmark wrote: cold (every token once) and warm (one token again and again).
// Usage: node bench/node/verify.mjs <pem file> <tokens file, one per line> <warm iterations>
import { readFileSync } from 'node:fs';
import { verifyToken } from '../../node_modules/@clerk/backend/dist/index.mjs';

const [pemFile, tokensFile, warmArg] = process.argv.slice(2);
const jwtKey = readFileSync(pemFile, 'utf8');
const tokens = readFileSync(tokensFile, 'utf8').trim().split('\n');
const warm = Number(warmArg ?? 20000);

async function run(list) {
  const t = process.hrtime.bigint();
  for (const token of list) {
    const claims = await verifyToken(token, { jwtKey, skipJwksCache: true });
    if (!claims.sub) throw new Error('no sub');
  }
  return list.length / (Number(process.hrtime.bigint() - t) / 1e9);
}

await run(tokens.slice(0, 50)); // warm up the JIT
const cold = await run(tokens);
const same = Array(warm).fill(tokens[0]);
const hot = await run(same);
console.log(JSON.stringify({ cold_per_sec: cold, warm_per_sec: hot, node: process.version }));
