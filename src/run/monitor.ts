/**
 * The detached container monitor (like containerd-shim): `node dist/run/monitor.js ROOT ID`,
 * started by `berth run -d` / `berth start` in its own session. It runs `runc run` in the
 * foreground (runc reaps the container), writes the log, records the exit status, unmounts the
 * rootfs and removes the container when it was started with --rm. It tells its parent on fd 3
 * `ok PID` once the container runs, or `err {json}` when it could not start.
 */
import { Socket } from 'node:net';
import { BerthError } from '../errors.js';
import { Containers } from './containers.js';

async function main(): Promise<void> {
  const [root, id] = process.argv.slice(2);
  if (!root || !id) {
    process.stderr.write('usage: monitor.js ROOT ID\n');
    process.exit(2);
  }
  let chan: Socket | undefined;
  try {
    chan = new Socket({ fd: 3, readable: false, writable: true });
    chan.on('error', () => {});
  } catch {
    chan = undefined;
  }
  const tell = (line: string) => {
    if (!chan) return;
    chan.end(line + '\n');
    chan = undefined;
  };
  // The container's signals come through runc kill; the monitor itself ignores hangups.
  process.on('SIGHUP', () => {});
  process.on('SIGPIPE', () => {});
  const containers = await Containers.open(root);
  try {
    const code = await containers.supervise(id, {
      stdin: 'ignore',
      tty: false,
      onStarted: (pid) => tell(`ok ${pid}`),
    });
    tell(`exit ${code}`);
  } catch (e) {
    const err = e instanceof BerthError ? e : new BerthError('INTERNAL', (e as Error)?.message ?? String(e));
    tell(`err ${JSON.stringify({ code: err.code, message: err.message, exitCode: err.exitCode, ...(err.hint ? { hint: err.hint } : {}) })}`);
    process.stderr.write(`${new Date().toISOString()} ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  }
}

void main();
