// Writes a brotli (quality 11) and a gzip (level 9) copy beside every text
// and wasm file of the built site, for the server to send as they are
// (server/src/assets.rs). Run by `make site` after `cargo leptos build`:
//
//   node frontend/precompress.mjs target/site
//
// A copy that is already newer than its file is kept (a rebuild compresses
// only what changed). The server ignores a copy older than its file, so a
// site rebuilt without this step is never served stale bytes.
import { readdirSync, readFileSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const COMPRESSIBLE = /\.(js|mjs|wasm|css|html|json|webmanifest|svg|txt|xml|map)$/;
const root = process.argv[2];
if (!root) {
  console.error('usage: node frontend/precompress.mjs <site folder>');
  process.exit(2);
}

function* files(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile() && COMPRESSIBLE.test(e.name)) yield p;
  }
}

function fresh(copy, source) {
  try {
    return statSync(copy).mtimeMs >= statSync(source).mtimeMs && statSync(copy).size > 0;
  } catch {
    return false;
  }
}

let raw = 0;
let br = 0;
let gz = 0;
let made = 0;
for (const file of files(root)) {
  const bytes = readFileSync(file);
  raw += bytes.length;
  const { mtime } = statSync(file);
  for (const [ext, compress] of [
    ['br', (b) => brotliCompressSync(b, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: b.length,
        [constants.BROTLI_PARAM_MODE]: /\.wasm$/.test(file) ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
      },
    })],
    ['gz', (b) => gzipSync(b, { level: 9 })],
  ]) {
    const copy = `${file}.${ext}`;
    if (!fresh(copy, file)) {
      writeFileSync(copy, compress(bytes));
      // Never older than the file it copies, whatever the clock's resolution.
      const now = new Date(Math.max(Date.now(), mtime.getTime()));
      utimesSync(copy, now, now);
      made += 1;
    }
    const size = statSync(copy).size;
    if (ext === 'br') br += size;
    else gz += size;
  }
}
const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(`precompressed ${root}: ${kb(raw)} of text and wasm, ${kb(gz)} gzip, ${kb(br)} brotli (${made} copies written)`);
