import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Containerd {
  sock: string;
  /** Run `ctr` against this containerd in namespace `berth-test` (or `opts.namespace`). */
  ctr(args: string[], opts?: { timeout?: number; namespace?: string }): Promise<string>;
  stop(): Promise<void>;
}

/** A real containerd on a private socket, root and state under `dir` (no CRI, no snapshotter plugins we cannot use). */
export async function startContainerd(dir: string): Promise<Containerd> {
  const sock = join(dir, 'c.sock');
  const cfg = join(dir, 'containerd.toml');
  await writeFile(
    cfg,
    `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"
`,
  );
  const p = spawn('containerd', ['--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr!.on('data', (c: Buffer) => void (log = (log + c.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  const ctr = async (args: string[], opts: { timeout?: number; namespace?: string } = {}) =>
    (await run('ctr', ['-a', sock, '-n', opts.namespace ?? 'berth-test', ...args], { timeout: opts.timeout ?? 30_000, maxBuffer: 16 << 20 })).stdout;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await run('ctr', ['-a', sock, 'version'], { timeout: 5000 });
      break;
    } catch (e) {
      if (p.exitCode !== null || Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`containerd did not start: ${log}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    sock,
    ctr,
    stop: async () => {
      if (p.exitCode === null) {
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
