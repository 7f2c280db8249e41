import { execa } from 'execa';
import { BerthError } from '../errors.js';

/** The one typed wrapper around BuildKit's `buildctl` (execa is imported here and in the Runc wrapper only). */
export class Buildctl {
  readonly binary: string;
  readonly addr: string | undefined;

  constructor(opts: { binary?: string; addr?: string } = {}) {
    this.binary = opts.binary ?? process.env.BERTH_BUILDCTL ?? 'buildctl';
    this.addr = opts.addr ?? process.env.BUILDKIT_HOST;
  }

  /** `buildctl --version`, or undefined when it is not installed. */
  async version(signal?: AbortSignal): Promise<string | undefined> {
    try {
      const r = await execa(this.binary, ['--version'], { timeout: 10_000, reject: false, ...(signal ? { cancelSignal: signal } : {}) });
      if (r.exitCode !== 0) return undefined;
      const m = /buildctl\s+\S+\s+(v?\d[^\s]*)/.exec(r.stdout) ?? /(v?\d+\.\d+\.\d+\S*)/.exec(r.stdout);
      return m?.[1] ?? r.stdout.trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new BerthError('PROCESS', `running ${this.binary} --version failed`, { cause: e });
    }
  }
}
