import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** `--root`, else BERTH_ROOT, else /var/lib/berth as root, else $XDG_DATA_HOME/berth. */
export function resolveRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return resolve(explicit);
  if (env.BERTH_ROOT) return resolve(env.BERTH_ROOT);
  if (process.getuid?.() === 0) return '/var/lib/berth';
  const xdg = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'berth');
}
