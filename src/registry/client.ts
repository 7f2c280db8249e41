import { CredentialStore } from './credentials.js';
import { configuredInsecureRegistries } from './hosts.js';
import { Transport, type TransportOptions } from './http.js';

/** Options every registry operation takes (CLI: --insecure-registry, --ca). */
export interface RegistryOptions {
  /** A transport to reuse (its options win); else one is made from the options below and closed after. */
  transport?: Transport;
  insecureRegistries?: readonly string[];
  caFiles?: readonly string[];
  /** Where credentials come from (default: docker's config.json under DOCKER_CONFIG). */
  credentials?: TransportOptions['credentials'];
  retries?: number;
  retryBaseMs?: number;
  retryCapMs?: number;
}

/** Make (or reuse) a transport; `done` closes it when it was made here. */
export function openTransport(opts: RegistryOptions = {}): { transport: Transport; done: () => Promise<void> } {
  if (opts.transport) return { transport: opts.transport, done: async () => {} };
  const creds = new CredentialStore();
  const t = new Transport({
    insecureRegistries: [...(opts.insecureRegistries ?? []), ...configuredInsecureRegistries()],
    caFiles: opts.caFiles ?? [],
    credentials: opts.credentials ?? ((d) => creds.get(d)),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
    ...(opts.retryCapMs !== undefined ? { retryCapMs: opts.retryCapMs } : {}),
  });
  return { transport: t, done: () => t.close() };
}
