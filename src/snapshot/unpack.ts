/**
 * Unpacking an image: every layer not unpacked yet becomes its own committed snapshot, named by
 * chain id, written by `Snapshotter.apply`. The layers come from any content source (the store,
 * a registry, an archive); each is verified against the config's diff_id as it is applied.
 */
import { BerthError } from '../errors.js';
import type { ContentSource, OpOptions } from '../oci/content.js';
import { layerCompression } from '../oci/mediatype.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { chainIds, type Snapshotter } from './snapshotter.js';

/** What unpacking needs of an image: its manifest and config (a store ImageView has both). */
export interface UnpackImage {
  manifest: Manifest;
  config: ImageConfig;
  /** For messages. */
  name?: string;
  manifestDesc?: Descriptor;
}

/** Unpack the layers of `image` that `snapshotter` lacks; returns the top chain id. */
export async function unpack(snapshotter: Snapshotter, source: ContentSource, image: UnpackImage, opts: OpOptions = {}): Promise<{ chainId: string }> {
  const layers = image.manifest.layers;
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  const img = image.name ?? image.manifestDesc?.digest ?? 'image';
  if (layers.length !== diffIds.length) {
    throw new BerthError('INVALID_ARGUMENT', `image ${img}: ${layers.length} layers but ${diffIds.length} diff_ids in the config`);
  }
  if (layers.length === 0) throw new BerthError('INVALID_ARGUMENT', `image ${img} has no layers`);
  const chain = chainIds(diffIds);
  for (let i = 0; i < layers.length; i++) {
    const chainId = chain[i]!;
    if (await snapshotter.has(chainId)) continue;
    const layer = layers[i]!;
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      throw new BerthError('UNSUPPORTED', `image ${img}: layer ${layer.digest} has media type ${layer.mediaType}, which is not a layer berth can unpack`);
    }
    const what = `layer ${layer.digest}`;
    opts.onProgress?.({ type: 'blob-start', digest: layer.digest, size: layer.size, mediaType: layer.mediaType, id: 'unpack' });
    await snapshotter.apply(chainId, i > 0 ? chain[i - 1]! : undefined, async (dir) => {
      // Loaded on first unpack only: a warm `berth run` never needs the tar reader.
      const { applyLayer } = await import('../archive/apply.js');
      const res = await applyLayer(await source.fetch(layer, opts.signal ? { signal: opts.signal } : {}), dir, {
        whiteouts: 'overlay',
        compression,
        what,
        size: layer.size,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: (e) => opts.onProgress!(e.type === 'blob-progress' ? { ...e, digest: layer.digest } : e) } : {}),
      });
      if (res.diffId !== diffIds[i]) {
        throw new BerthError('DIGEST_MISMATCH', `${what}: uncompressed digest ${res.diffId} does not match the config's diff_id ${diffIds[i]}`, {
          hint: 'the image is corrupt; pull or load it again',
        });
      }
      return { diffId: res.diffId };
    });
    opts.onProgress?.({ type: 'blob-done', digest: layer.digest, size: layer.size });
  }
  return { chainId: chain[chain.length - 1]! };
}
