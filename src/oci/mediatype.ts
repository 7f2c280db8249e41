/** Media types of the OCI image spec and Docker's schema2. */
export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_NONDIST: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDIST_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDIST_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_V1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_MANIFEST_V1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN_GZIP: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  IN_TOTO: 'application/vnd.in-toto+json',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

export function isIndex(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_MANIFEST_LIST;
}

export function isManifest(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
}

export function isSchema1(mt: string | undefined): boolean {
  return mt === MediaType.DOCKER_MANIFEST_V1 || mt === MediaType.DOCKER_MANIFEST_V1_SIGNED;
}

export function isConfig(mt: string | undefined): boolean {
  return mt === MediaType.OCI_CONFIG || mt === MediaType.DOCKER_CONFIG;
}

const LAYER_TYPES: Readonly<Record<string, Compression>> = {
  [MediaType.OCI_LAYER]: 'none',
  [MediaType.OCI_LAYER_GZIP]: 'gzip',
  [MediaType.OCI_LAYER_ZSTD]: 'zstd',
  [MediaType.OCI_LAYER_NONDIST]: 'none',
  [MediaType.OCI_LAYER_NONDIST_GZIP]: 'gzip',
  [MediaType.OCI_LAYER_NONDIST_ZSTD]: 'zstd',
  [MediaType.DOCKER_LAYER]: 'none',
  [MediaType.DOCKER_LAYER_GZIP]: 'gzip',
  [MediaType.DOCKER_LAYER_FOREIGN_GZIP]: 'gzip',
  [MediaType.DOCKER_LAYER_ZSTD]: 'zstd',
};

export function isLayer(mt: string | undefined): boolean {
  return mt !== undefined && mt in LAYER_TYPES;
}

/** Compression of a layer media type, or undefined when it is not a layer type berth knows. */
export function layerCompression(mt: string): Compression | undefined {
  return LAYER_TYPES[mt];
}

/** Sniff compression from the first bytes of a stream. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
