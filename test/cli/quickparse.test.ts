import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { BerthCommand, BerthGroup } from '../../src/cli/command.js';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { GLOBALS, quickParse } from '../../src/cli/quickparse.js';

/**
 * The CLI's fast path reads a verb's flags from its yargs builder without yargs. For every verb
 * and a set of word lists, what it returns must equal what yargs gives the handler — or it must
 * decline (undefined) so that yargs decides.
 */
const yargsOf = createRequire(import.meta.url)('yargs/yargs') as (a: string[]) => any;

async function commands(): Promise<{ words: string[]; cmd: BerthCommand<any> }[]> {
  const out: { words: string[]; cmd: BerthCommand<any> }[] = [];
  for (const e of COMMANDS) {
    const mod = (await e.load()).default as BerthCommand<any> | BerthGroup;
    if ('subcommands' in mod) for (const s of mod.subcommands) out.push({ words: [e.name, String(Array.isArray(s.command) ? s.command[0] : s.command).split(' ')[0]!], cmd: s });
    else if (!mod.split) out.push({ words: [e.name], cmd: mod });
  }
  return out;
}

/** What yargs hands the handler for these words (or the error it throws). */
async function viaYargs(cmd: BerthCommand<any>, words: string[], args: string[]): Promise<Record<string, unknown> | 'error'> {
  let got: Record<string, unknown> | undefined;
  const names = Array.isArray(cmd.command) ? cmd.command : [cmd.command as string];
  const leaf = { command: names[0], aliases: names.slice(1), describe: 'x', builder: (b: any) => (cmd.builder ? cmd.builder(b) : b), handler: (a: any) => void (got = a) };
  let y = yargsOf([...words, ...args]).exitProcess(false).strict().fail((_m: string, e: Error) => {
    throw e ?? new Error(_m);
  });
  for (const g of GLOBALS) y = y.option(g.name, { type: g.type, global: true, ...(g.default !== undefined ? { default: g.default } : {}), ...(g.choices ? { choices: g.choices } : {}) });
  y = words.length === 2 ? y.command(words[0], 'g', (b: any) => b.command(leaf)) : y.command(leaf);
  try {
    await y.parseAsync();
  } catch {
    return 'error';
  }
  return got ?? 'error';
}

const clean = (a: Record<string, unknown>) => {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (k !== '$0') o[k] = v;
  return o;
};

// Word lists tried on every verb: plain ones the fast path must take, odd ones it may decline.
const SAMPLES: string[][] = [
  [],
  ['x'],
  ['x', 'y'],
  ['x', 'y', 'z'],
  ['-a'],
  ['-q', 'x'],
  ['-aq'],
  ['--all', 'x'],
  ['--no-trunc'],
  ['--trunc=false', 'x'],
  ['-f', 'dangling=true'],
  ['-f', 'a', '-f', 'b'],
  ['--filter=reference=x*'],
  ['--format', 'json', 'x'],
  ['--root', '/r', 'x'],
  ['--progress', 'plain', 'x'],
  ['--progress', 'bogus', 'x'],
  ['--debug', 'x'],
  ['--force', 'x'],
  ['-f', 'x'],
  ['-t', '3', 'x'],
  ['--time', 'abc', 'x'],
  ['--max-concurrent', '2', 'x'],
  ['--platform', 'linux/amd64', 'x', 'y'],
  ['-o', 'out.tar', 'x'],
  ['--output=out.tar', 'x', 'y'],
  ['-i', 'in.tar'],
  ['-c', 'CMD ["a"]', '-m', 'msg', 'x', 'y'],
  ['--bogus', 'x'],
  ['-Z'],
  ['--', 'x'],
  ['x', '--', '-y'],
  ['123'],
  ['-s', '--format', '{{.ID}}'],
  ['--compression-format', 'zstd', 'x'],
  ['-q', '-q'],
];

describe('quickParse (the start-up fast path) agrees with yargs', () => {
  it('on every verb, for every word list it accepts', async () => {
    const cmds = await commands();
    expect(cmds.length).toBeGreaterThan(25);
    let taken = 0;
    const mismatches: string[] = [];
    for (const { words, cmd } of cmds) {
      for (const args of SAMPLES) {
        const fast = quickParse(cmd, args, words);
        if (fast === undefined) continue;
        taken++;
        const slow = await viaYargs(cmd, words, args);
        if (slow === 'error' || !sameKeys(clean(fast), clean(slow))) mismatches.push(`berth ${words.join(' ')} ${args.join(' ')}: fast ${JSON.stringify(clean(fast))} yargs ${slow === 'error' ? slow : JSON.stringify(clean(slow))}`);
      }
    }
    expect(mismatches).toEqual([]);
    // the fast path must really take the common forms
    expect(taken).toBeGreaterThan(150);
  }, 120_000);

  it('declines what only yargs should answer', async () => {
    const cmds = await commands();
    const images = cmds.find((c) => c.words[0] === 'images')!.cmd;
    for (const args of [['--help'], ['-h'], ['--bogus'], ['a', 'b'], ['--progress', 'x'], ['--format'], ['-f']]) expect(quickParse(images, args, ['images']), args.join(' ')).toBeUndefined();
    const tag = cmds.find((c) => c.words[0] === 'tag')!.cmd;
    expect(quickParse(tag, ['a'], ['tag'])).toBeUndefined(); // a required positional missing
    expect(quickParse(tag, ['a', 'b'], ['tag'])).toMatchObject({ source: 'a', target: 'b' });
  });
});

function sameKeys(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return JSON.stringify(ka) === JSON.stringify(kb) && ka.every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
}
