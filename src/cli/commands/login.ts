import { defineCommand } from '../command.js';
import { registryFlags, registryOptions } from './pull.js';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

export default defineCommand<{ server?: string; username?: string; password?: string; passwordStdin?: boolean; insecureRegistry?: string | string[]; ca?: string | string[] }>({
  command: 'login [server]',
  describe: 'Log in to a registry (credentials are checked, then stored like docker does)',
  builder: (y) =>
    registryFlags(
      y
        .positional('server', { type: 'string', describe: 'Registry host (default docker.io)' })
        .option('username', { alias: 'u', type: 'string', describe: 'User name' })
        .option('password', { alias: 'p', type: 'string', describe: 'Password (prefer --password-stdin)' })
        .option('password-stdin', { type: 'boolean', describe: 'Read the password from standard input' }),
    ),
  async run(argv, ctx) {
    const { BerthError } = await import('../../index.js');
    if (argv.password !== undefined && argv.passwordStdin) throw new BerthError('INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive');
    if (!argv.username) throw new BerthError('INVALID_ARGUMENT', 'login needs a username', { hint: 'pass -u USER' });
    let password = argv.password;
    if (argv.passwordStdin) password = await readStdin();
    else if (password !== undefined) ctx.warn('using --password on the command line is insecure; use --password-stdin');
    if (!password) throw new BerthError('INVALID_ARGUMENT', 'login needs a password', { hint: 'pass --password-stdin and write the password to standard input' });
    const r = await (await ctx.berth()).login(argv.server ?? 'docker.io', { username: argv.username, password }, { ...registryOptions(argv), signal: ctx.signal });
    process.stderr.write(`credentials saved to ${r.where}\n`);
    ctx.out('Login Succeeded');
  },
});
