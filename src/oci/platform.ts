import { arch as hostArch } from 'node:os';
import { BerthError } from '../errors.js';
import type { Platform } from './types.js';

const ARCH_ALIASES: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  x64: 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  ia32: '386',
  i386: '386',
  ppc64: 'ppc64',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** Normalise an architecture and variant as containerd's platforms package does. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (p.architecture.toLowerCase() === 'armhf') variant ??= 'v7';
  if (p.architecture.toLowerCase() === 'armel') variant ??= 'v6';
  if (architecture === 'arm64') {
    if (variant === '8' || variant === 'v8') variant = undefined; // v8 is the default for arm64
  } else if (architecture === 'arm') {
    if (variant === undefined || variant === '' || variant === '7') variant = 'v7';
    else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
  } else if (architecture === 'amd64') {
    if (variant === 'v1') variant = undefined;
  }
  const out: { os: string; architecture: string; variant?: string; 'os.version'?: string } = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** Parse `linux/amd64`, `linux/arm64/v8`, `arm64`, `linux`. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length === 0 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new BerthError('INVALID_ARGUMENT', `invalid platform ${JSON.stringify(spec)}`, {
      hint: 'use os/arch[/variant], for example linux/amd64 or linux/arm64/v8',
    });
  }
  const host = hostPlatform();
  if (parts.length === 1) {
    const one = parts[0]!.toLowerCase();
    if (['linux', 'windows', 'darwin', 'freebsd'].includes(one)) return normalizePlatform({ os: one, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
    return normalizePlatform({ os: 'linux', architecture: one });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

export function hostPlatform(): Platform {
  const a = ARCH_ALIASES[hostArch()] ?? hostArch();
  return normalizePlatform(a === 'arm' ? { os: 'linux', architecture: 'arm', variant: 'v7' } : { os: 'linux', architecture: a });
}

/** Whether an image platform can run where `want` is asked (exact os/arch, compatible variant). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.architecture === 'arm') {
    // armv7 runs v6 and v5 images as well.
    const rank = (v: string | undefined) => Number((v ?? 'v7').slice(1));
    return rank(h.variant) <= rank(w.variant);
  }
  return (w.variant ?? '') === (h.variant ?? '') || h.variant === undefined;
}

/** Preference order among matching platforms: exact variant first, then newest compatible. */
export function platformScore(want: Platform, have: Platform | undefined): number {
  if (!platformMatches(want, have)) return -1;
  const w = normalizePlatform(want);
  const h = normalizePlatform(have!);
  if ((w.variant ?? '') === (h.variant ?? '')) return 100;
  return 50 + Number((h.variant ?? 'v0').slice(1));
}
