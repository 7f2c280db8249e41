/**
 * The detached container monitor's entry: `node dist/run/monitor-main.js ROOT ID` (protocol in
 * monitor.ts). It supervises the container in the foreground until it exits.
 */
import { Containers } from './containers.js';
import { parentChannel } from './monitor.js';

async function main(): Promise<void> {
  const [root, id] = process.argv.slice(2);
  if (!root || !id) {
    process.stderr.write('usage: monitor-main.js ROOT ID\n');
    process.exit(2);
  }
  const parent = parentChannel();
  // The container's signals come through runc kill; the monitor itself ignores hangups.
  process.on('SIGHUP', () => {});
  process.on('SIGPIPE', () => {});
  try {
    const containers = await Containers.open(root);
    const code = await containers.supervise(id, { stdin: 'ignore', tty: false, onStarted: (pid) => parent.started(pid) });
    parent.exited(code);
  } catch (e) {
    parent.failed(e);
    process.stderr.write(`${new Date().toISOString()} ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

void main();
