import type { Argv, ArgumentsCamelCase } from 'yargs';
import type { CliContext, GlobalArgs } from './context.js';

/** One CLI verb: parse flags (builder), call the library, print (run). */
export interface BerthCommand<A = Record<string, unknown>> {
  command: string | readonly string[];
  describe: string;
  builder?: (y: Argv<GlobalArgs>) => Argv<unknown>;
  run: (argv: ArgumentsCamelCase<A & GlobalArgs>, ctx: CliContext) => Promise<void>;
  /**
   * For verbs that pass their trailing arguments through (run, exec): given the arguments after
   * the verb, how many are berth's. The rest reaches the handler verbatim as `ctx.split.rest`
   * and is never parsed by berth (its --root, --debug, --help are the container's).
   */
  split?: (args: readonly string[]) => number;
}

export function defineCommand<A = Record<string, unknown>>(c: BerthCommand<A>): BerthCommand<A> {
  return c;
}

/** A command group (`system df`, `image prune`): subcommands loaded from the same module. */
export interface BerthGroup {
  command: string;
  describe: string;
  subcommands: readonly BerthCommand<any>[];
}
