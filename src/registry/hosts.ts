import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';

/** Docker Hub's API host and the key docker uses for it in config.json. */
export const DOCKER_HUB_API = 'registry-1.docker.io';
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** `host:port` -> `host` (brackets of an IPv6 literal removed). */
export function hostOnly(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const i = domain.lastIndexOf(':');
  return i === -1 || domain.indexOf(':') !== i ? domain : domain.slice(0, i);
}

/** The host the API is served from for a reference domain (docker.io -> registry-1.docker.io). */
export function apiHost(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' ? DOCKER_HUB_API : domain;
}

export function isLoopback(host: string): boolean {
  const h = hostOnly(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** Private, loopback or link-local address literals (used to refuse suspicious token realms). */
export function isPrivateAddress(host: string): boolean {
  const h = hostOnly(host).toLowerCase();
  if (isLoopback(h)) return true;
  if (isIP(h) === 4) {
    const [a, b] = h.split('.').map(Number) as [number, number];
    return a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (isIP(h) === 6) return h.startsWith('fe8') || h.startsWith('fe9') || h.startsWith('fea') || h.startsWith('feb') || h.startsWith('fc') || h.startsWith('fd') || h === '::';
  return false;
}

/** Whether plain HTTP may be used for `domain`: loopback, or named as insecure. */
export function plainHttpAllowed(domain: string, insecure: readonly string[] = []): boolean {
  if (isLoopback(domain)) return true;
  const d = domain.toLowerCase();
  return insecure.some((i) => {
    const x = i.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    return x === d || x === hostOnly(d);
  });
}

/**
 * berth's own config file: `$BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.json`, else
 * `~/.config/berth/config.json`. Only `insecure-registries` is read here.
 */
export function configuredInsecureRegistries(env: NodeJS.ProcessEnv = process.env): string[] {
  const path = env.BERTH_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'berth', 'config.json');
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { 'insecure-registries'?: unknown };
    const list = v['insecure-registries'];
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
