#!/usr/bin/env node
// Node >= 22.1 keeps compiled code of berth's modules between runs (a no-op where it is absent).
import module from 'node:module';
module.enableCompileCache?.();
// Fast path for --version: no module graph beyond this file.
const args = process.argv.slice(2);
/** The words left after berth's global flags (`--root DIR`, `--progress MODE`, `--debug`). */
const bare = (a) => {
  const out = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--root' || a[i] === '--progress') i++;
    else if (a[i] !== '--debug' && !/^--(root|progress)=/.test(a[i])) out.push(a[i]);
  }
  return out;
};
const rest = bare(args);
if (rest.length === 1 && (rest[0] === '--version' || rest[0] === '-v')) {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`berth version ${pkg.version}\n`);
} else {
  const { main } = await import('../dist/cli/main.js');
  await main(args);
}
