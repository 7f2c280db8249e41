/**
 * Unpack an image inside containerd for a snapshotter, the way containerd's own unpacker does
 * it, so the first container start does not pay for it: per layer, the chain id names a
 * committed snapshot; a missing one is prepared on its parent, the layer applied by
 * containerd's diff service (checked against the config's diff_id) and committed. The config
 * then carries `containerd.io/gc.ref.snapshot.<snapshotter>` so gc keeps the snapshots, and each
 * layer `containerd.io/uncompressed`.
 */
import { randomBytes } from 'node:crypto';
import { BerthError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { sha256 } from '../oci/digest.js';
import { parseImageConfig } from '../oci/manifest.js';
import type { Digest, Manifest } from '../oci/types.js';
import type { ContainerdClient } from './client.js';
import { ContainerdSource } from './content.js';

export interface UnpackResult {
  /** The chain id of the top layer (the snapshot containers start from). */
  chainId: Digest;
  /** Layers applied now (the others were unpacked already). */
  applied: number;
}

/** Chain ids of a layer stack (OCI image spec: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

export async function unpackImage(client: ContainerdClient, manifest: Manifest, snapshotter: string, opts: OpOptions = {}): Promise<UnpackResult> {
  const src = new ContainerdSource(client);
  const config = parseImageConfig(await src.fetchBytes(manifest.config, opts));
  const diffIds = config.rootfs.diff_ids as Digest[];
  if (diffIds.length !== manifest.layers.length) throw new BerthError('INVALID_ARGUMENT', `image config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
  const chain = chainIds(diffIds);
  let applied = 0;
  for (let i = 0; i < chain.length; i++) {
    opts.signal?.throwIfAborted();
    const id = chain[i]!;
    const parent = i === 0 ? '' : chain[i - 1]!;
    if (!(await client.hasSnapshot(snapshotter, id, opts))) {
      const key = `extract-${Date.now()}${randomBytes(4).toString('hex')} ${id}`;
      const mounts = await client.prepareSnapshot(snapshotter, key, parent, { 'containerd.io/snapshot.ref': id }, opts);
      try {
        opts.onProgress?.({ type: 'message', text: `unpacking ${manifest.layers[i]!.digest} for ${snapshotter}` });
        const got = await client.applyDiff(manifest.layers[i]!, mounts, opts);
        if (got.digest !== diffIds[i]) throw new BerthError('DIGEST_MISMATCH', `layer ${manifest.layers[i]!.digest} unpacks to ${got.digest}, the config says ${diffIds[i]}`);
        try {
          await client.commitSnapshot(snapshotter, id, key, {}, opts);
        } catch (e) {
          if (!(e instanceof BerthError && e.code === 'ALREADY_EXISTS')) throw e;
        }
        applied++;
      } finally {
        await client.removeSnapshot(snapshotter, key).catch(() => {});
      }
    }
    await client.setLabels(manifest.layers[i]!.digest, { 'containerd.io/uncompressed': diffIds[i]! }, opts);
  }
  if (chain.length) await client.setLabels(manifest.config.digest, { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: chain[chain.length - 1]! }, opts);
  return { chainId: chain[chain.length - 1] ?? ('' as Digest), applied };
}
