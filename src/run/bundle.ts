/**
 * OCI bundles: a directory with `config.json` (the runtime spec) whose `root.path` names the
 * rootfs (relative to the bundle or absolute). Any rootfs works: a container's overlay mount, a
 * build step's snapshot, a plain directory. Spec building stays in spec.ts (`buildSpec`).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fromSystemError } from '../errors.js';
import { ensureMountpoint } from './rootfs.js';
import { RUNTIME_DIRS, RUNTIME_FILES, type RuntimeSpec } from './spec.js';
import { randomHex } from '../oci/digest.js';

/** The rootfs of a spec as a host path (`root.path` is relative to the bundle directory). */
export function bundleRootfs(dir: string, spec: Pick<RuntimeSpec, 'root'>): string {
  return isAbsolute(spec.root.path) ? spec.root.path : join(dir, spec.root.path);
}

/**
 * Write `config.json` of a bundle (the directory is created when missing; the file replaced
 * atomically, so runc never reads half of it). The rootfs is not touched: see prepareRootfs.
 */
export async function writeBundle(dir: string, spec: RuntimeSpec): Promise<void> {
  const file = join(dir, 'config.json');
  const tmp = `${file}.tmp-${process.pid}-${randomHex(3)}`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, JSON.stringify(spec));
    await rename(tmp, file);
  } catch (e) {
    throw fromSystemError(e, `writing the bundle ${dir}`);
  }
}

/**
 * Make the runtime's mount points in the rootfs real before runc mounts over them: /proc, /dev,
 * /sys and friends as directories, and the destination of every file bind mount of the spec
 * (/etc/hosts, /etc/resolv.conf, a `--init` binary) as a file. A symlink an image put at one of
 * these paths is replaced, never followed out of the root. `fileMounts` names the destinations
 * whose source is a file (the caller knows; runc would otherwise create a directory).
 */
export async function prepareRootfs(rootfs: string, spec: Pick<RuntimeSpec, 'mounts'>, fileMounts: readonly string[] = []): Promise<void> {
  const files = new Set<string>(fileMounts);
  for (const m of spec.mounts) if (RUNTIME_FILES.includes(m.destination)) files.add(m.destination);
  for (const d of RUNTIME_DIRS) await ensureMountpoint(rootfs, d, 'dir');
  for (const f of files) await ensureMountpoint(rootfs, f, 'file');
}
