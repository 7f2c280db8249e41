#!/usr/bin/env node
// Node >= 22.1 keeps compiled code of berth's modules between runs (a no-op where it is absent).
import module from 'node:module';
module.enableCompileCache?.();
// Fast path for --version: no module graph beyond this file.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`berth version ${pkg.version}\n`);
} else {
  const { main } = await import('../dist/cli/main.js');
  await main(args);
}
